"""Wi-Fi station with retries: ``connect()`` blocks until joined or ``attempts`` are spent."""

import time

import network

WAIT_MS = 10000


def connect(ssid, password, attempts=5, feed=None):
    """Join ``ssid``; the WLAN object or None. ``feed()`` is called while waiting (watchdog)."""
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if wlan.isconnected():
        return wlan
    for attempt in range(attempts):
        wlan.connect(ssid, password)
        started = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), started) < WAIT_MS:
            if wlan.isconnected():
                return wlan
            status = wlan.status()
            if status != network.STAT_CONNECTING and status != network.STAT_IDLE:
                break
            if feed:
                feed()
            time.sleep_ms(100)
        print("wifi: attempt", attempt + 1, "failed, status", wlan.status())
        time.sleep_ms(500 * (attempt + 1))
    return None


def info(wlan):
    """What the twin reports about the link."""
    out = {"type": "wifi", "connected": bool(wlan and wlan.isconnected())}
    if out["connected"]:
        try:
            out["ip"] = wlan.ifconfig()[0]
        except Exception:
            pass
        try:
            out["rssi"] = wlan.status("rssi")
        except Exception:
            pass
    return out
