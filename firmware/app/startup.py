"""Bringing the node up, once per boot: config, Wi-Fi, clock, watchdog, the client and the parts
of the app, and the firmware's first report. Imported with ``iothub.transient`` by ``app.main``:
run in place, none of it holds heap once the loop runs (the clock is synced here again only
after the hub refused a token)."""

import gc
import time

import machine

from app import led as ledmod
from app.events import emit
from iothub import transient

VERSION = transient("app.version").VERSION

RETRY_MS = 5000  # between attempts at config, Wi-Fi and a hub that refused or failed
MAX_INFLIGHT = 4  # telemetry published and not yet acknowledged
# What the loop keeps of config.json (app.cfg): Wi-Fi for a reconnect, the CA for a firmware
# update, the intervals a desired null restores.
KEPT = ("wifi", "ca_file", "telemetry_interval", "report_interval")


def _log(level, text):
    print("iothub:", text)


def wait_for_config(config, led):
    while True:
        cfg, problem = config.load()
        if cfg is not None:
            return cfg
        emit("config_error", {"reason": problem})
        print("config:", problem)
        led.blink(ledmod.CONFIG)
        time.sleep_ms(RETRY_MS)


def wait_for_wifi(cfg, led):
    wifi = transient("app.wifi")
    while True:
        wlan = wifi.connect(cfg["wifi"]["ssid"], cfg["wifi"].get("password", ""))
        if wlan is not None:
            print("wifi: connected, address", wlan.ifconfig()[0])
            return wlan
        emit("wifi_error", {"ssid": cfg["wifi"]["ssid"]})
        led.blink(ledmod.WIFI)
        time.sleep_ms(RETRY_MS)


def sync_clock(led, feed=None):
    """NTP until it works: SAS tokens carry an expiry, so nothing connects before this."""
    import ntptime

    wait = 1000
    while True:
        try:
            ntptime.settime()
            return
        except OSError as e:
            print("ntp: failed", e)
            led.blink(ledmod.CLOCK)
            if feed:
                feed()
            time.sleep_ms(wait)
            wait = min(wait * 2, 30000)


def provisioned(cfg, config, led):
    """A config with ``dps`` instead of a connection string: the hub connection string DPS
    assigns (dps.json keeps it: a reboot asks DPS nothing). Until DPS answers: blink, wait, ask
    again; a refusal too (the enrollment may be made later)."""
    provision = transient("iothub.provision")
    dps = cfg["dps"]
    key = dps.get("symmetric_key") or provision.derive_key(dps["group_key"], dps["registration_id"])
    while True:
        try:
            result = provision.cached("dps.json", dps["id_scope"], dps["registration_id"], key,
                                      config.read_ca(cfg), host=dps.get("host", provision.GLOBAL_ENDPOINT),
                                      model_id=dps.get("model_id"))
            emit("provisioned", {"hub": result["hub"], "deviceId": result["device_id"],
                                 "cached": bool(result.get("cached"))})
            return provision.connection_string(result, key)
        except Exception as e:  # network, refusal, a broken answer: try again later
            emit("dps_error", {"error": repr(e)[:120]})
            print("dps:", repr(e))
            led.blink(ledmod.HUB)
            time.sleep_ms(RETRY_MS)


def _firmware_name():
    try:
        import os

        return "MicroPython " + os.uname().release
    except Exception:
        import sys

        return sys.version


def recover(app, refused):
    """The session is down for good (``refused``: the hub refused the token, so the clock is
    synced again first): blink, wait, and let the loop connect again."""
    app.led.blink(ledmod.HUB)
    if refused:
        sync_clock(app.led, app.feed)
    time.sleep_ms(RETRY_MS)
    app.feed()


def setup(app, reserved=None):
    """Fill in ``app`` (``app.board`` read): what the loop needs, the client registered with its
    callbacks; ``reserved``: the session's blocks, taken by ``App.setup`` before this module was
    loaded (``iothub.session.reserve``)."""
    config = transient("app.config")
    ledmod.setup(app.board)
    app.led = ledmod
    store = transient("app.store")
    device_mgmt = transient("app.device_mgmt")

    cfg = wait_for_config(config, app.led)
    app.cfg = cfg
    state = store.read_json("state.json", {})
    if not isinstance(state, dict):
        state = {}
    app.boot = state.get("boots", 0) + 1
    app.wlan = wait_for_wifi(cfg, app.led)
    sync_clock(app.led)
    if "dps" in cfg:  # before the watchdog: a DPS that keeps the board waiting must not reset it
        cfg["connection_string"] = provisioned(cfg, config, app.led)
    app.boot_time = device_mgmt.iso_now()
    app.firmware = _firmware_name()
    app.cause = device_mgmt.reset_cause_name()
    store.write_json("state.json", {"boots": app.boot, "lastBoot": app.boot_time})
    if cfg["watchdog_ms"]:
        try:
            app.wdt = machine.WDT(timeout=cfg["watchdog_ms"])
        except TypeError:  # ESP8266: fixed timeout
            app.wdt = machine.WDT()
    app.values = device_mgmt.load_settings(cfg)
    app.led.enabled = app.values["ledEnabled"]
    ca = config.read_ca(cfg)
    cs, port, queue = cfg["connection_string"], cfg["mqtt_port"], (cfg["queue_slots"], cfg["queue_slot_bytes"])
    backoff = (cfg["reconnect_min_ms"], cfg["reconnect_max_ms"], cfg["reconnect_jitter_ms"])
    # The loop and a method's work read only these later. The rest of the config, and the
    # modules that parsed and applied it, go before the client is built: that is start-up's
    # peak, and where an ESP8266 runs out of heap first.
    app.cfg = {}
    for name in KEPT:
        app.cfg[name] = cfg[name]
    cfg = config = device_mgmt = None
    gc.collect()
    # The client, its largest blocks taken at boot (App.setup). Built here, after Wi-Fi, the
    # clock and the state files: built before them (900 B less heap in place on an ESP8266), an
    # ESP32 running .mpy files found no 2.3 KB block for its upload's bytecode later.
    from iothub.client import IoTHubClient
    from iothub.clock import SystemClock

    app.clock = SystemClock()
    client = IoTHubClient(
        cs,
        ca=ca,
        port=port,
        queue_len=8,
        max_inflight=MAX_INFLIGHT,
        reserved=reserved,
        min_backoff_ms=backoff[0],
        max_backoff_ms=backoff[1],
        jitter_ms=backoff[2],
        clock=app.clock,
        log=_log,
    )
    ca = cs = None
    from app.offline_queue import FlashQueue
    from app import sensors
    from app import telemetry

    sensors.setup(app.board)
    app.sensors = sensors
    app.client = client
    ring = FlashQueue("queue.bin", queue[0], queue[1])
    telemetry.setup(client, ring, app.boot)
    app.telemetry = telemetry
    client.on_method(None, app.on_method)
    client.on_desired(app.on_desired)
    client.on_connection(app.on_connection)
    client.on_c2d(app.on_c2d)
    emit("booted", {"version": VERSION, "boot": app.boot, "resetCause": app.cause,
                    "queued": len(ring), "drops": ring.drops})
