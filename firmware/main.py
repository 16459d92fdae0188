# First firmware: bring the Wi-Fi up, set the clock, say who the board is.
# The IoT Hub agent app replaces this once the device library lands.
import gc
import json
import time

import machine
import network
import ntptime

WIFI_ATTEMPTS = 5
WIFI_WAIT_MS = 10000


def load_json(path, default):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def connect_wifi(ssid, password):
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    for attempt in range(WIFI_ATTEMPTS):
        wlan.connect(ssid, password)
        started = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), started) < WIFI_WAIT_MS:
            if wlan.isconnected():
                return wlan
            status = wlan.status()
            if status != network.STAT_CONNECTING and status != network.STAT_IDLE:
                break
            time.sleep_ms(100)
        print("wifi: attempt", attempt + 1, "failed, status", wlan.status())
        time.sleep_ms(500 * (attempt + 1))
    return None


def sync_clock():
    for _ in range(3):
        try:
            ntptime.settime()
            return True
        except OSError as exc:
            print("ntp: failed", exc)
            time.sleep_ms(1000)
    return False


def main():
    board = load_json("board.json", {})
    config = load_json("config.json", {})
    wifi = config.get("wifi") or {"ssid": "hostemu", "password": "hostemu"}
    wlan = connect_wifi(wifi.get("ssid"), wifi.get("password"))
    if wlan is None:
        print("wifi: no connection to", wifi.get("ssid"))
        return
    print("wifi: connected, address", wlan.ifconfig()[0])
    if sync_clock():
        year, month, day, hour, minute, second = time.gmtime()[:6]
        print("clock: %04d-%02d-%02dT%02d:%02d:%02dZ" % (year, month, day, hour, minute, second))
    gc.collect()
    uid = "".join("%02x" % b for b in machine.unique_id())
    print("board:", board.get("name", "unknown"), "id:", uid, "free:", gc.mem_free(), "reset cause:", machine.reset_cause())


main()
