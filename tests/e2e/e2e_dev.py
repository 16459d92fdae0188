# Device-side helpers for the end-to-end tests: copied onto the simulated board as /e2e_dev.py
# and imported by the test's main.py. Device code: MicroPython rules (no typing, no logging); it
# runs on the CPython emulation and on MicroPython's unix port (tests/unix).
import json
import os
import time

import network
import ntptime


def ev(event_name, **fields):
    # One JSON line per event: what the test reads with BoardProcess.expect_json().
    fields["event"] = event_name
    print(json.dumps(fields))


def log(level, text):
    ev("log", level=level, text=text, t=time.ticks_ms())


def config():
    with open("config.json") as f:
        return json.load(f)


def read_ca():
    with open(config().get("ca_file", "ca.der"), "rb") as f:
        return f.read()


def network_up():
    # Wi-Fi, then NTP: the SAS token needs the right time (the RTC starts in 2000).
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wlan.connect("hostemu", "hostemu")
    start = time.ticks_ms()
    while not wlan.isconnected():
        if time.ticks_diff(time.ticks_ms(), start) > 10000:
            raise OSError("no wifi")
        time.sleep_ms(20)
    ev("clock-before", year=time.gmtime()[0])
    ntptime.settime()
    ev("clock", year=time.gmtime()[0], epoch=time.gmtime(0)[0])


def flag(name):
    # The test's control channel: it creates a file named `name` in the board's folder.
    try:
        os.stat(name)
    except OSError:
        return False
    os.remove(name)
    return True


def make_client(**kw):
    from iothub.client import IoTHubClient

    cfg = config()
    kw.setdefault("log", log)
    kw.setdefault("log_level", 3)
    if "ca" not in kw:
        kw["ca"] = read_ca()
    return IoTHubClient(cfg["connection_string"], port=cfg["mqtt_port"], **kw)


def poll_until(client, cond, timeout_ms=20000, interval_ms=20):
    start = time.ticks_ms()
    while not cond():
        if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
            ev("poll-timeout")
            return False
        client.poll()
        time.sleep_ms(interval_ms)
    return True


def serve(client, until="stop", timeout_ms=60000, on_flag=None):
    # Poll until the test creates the `until` file; `on_flag(name)` for other flags.
    start = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), start) < timeout_ms:
        client.poll()
        if flag(until):
            return True
        if on_flag is not None:
            on_flag()
        time.sleep_ms(20)
    ev("serve-timeout")
    return False
