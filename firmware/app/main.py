"""The sensor node: config, Wi-Fi, clock, watchdog, then the loop (telemetry, twin, methods).

``run(fwstate)`` never returns: a missing or broken config.json, no Wi-Fi, no clock or no hub
are retried (with a console message and an LED blink code, see ``app.led``), and whatever
escapes is turned into a reset by /main.py.
"""

import gc
import sys
import time

import machine

from app import config, led as ledmod
from app.events import emit
from app.version import VERSION

CONFIG_RETRY_MS = 5000
POLL_MS = 50
MAX_INFLIGHT = 4


def _log(level, text):
    print("iothub:", text)


def _wait_for_config(led):
    while True:
        cfg, problem = config.load()
        if cfg is not None:
            return cfg
        emit("config_error", {"reason": problem})
        print("config:", problem)
        led.blink(ledmod.CONFIG)
        time.sleep_ms(CONFIG_RETRY_MS)


def _wait_for_wifi(cfg, led):
    from app import wifi

    while True:
        wlan = wifi.connect(cfg["wifi"]["ssid"], cfg["wifi"].get("password", ""))
        if wlan is not None:
            print("wifi: connected, address", wlan.ifconfig()[0])
            return wlan
        emit("wifi_error", {"ssid": cfg["wifi"]["ssid"]})
        led.blink(ledmod.WIFI)
        time.sleep_ms(CONFIG_RETRY_MS)


def _sync_clock(led, feed=None):
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


def _firmware_name():
    try:
        import os

        return "MicroPython " + os.uname().release
    except Exception:
        return sys.version


class App:
    def __init__(self, fwstate):
        self.fwstate = fwstate or {}
        self.board = config.load_board()
        self.led = ledmod.Led(self.board)
        self.wdt = None
        self.client = None
        self.report_due = True
        self.fw_reported = False

    # ------------------------------------------------------------------ helpers
    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def report(self, patch, cb=None):
        self.client.patch_reported(patch, cb)

    def _flush(self, ms):
        # Let the session put what was just queued on the wire (method answers, patches).
        start = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), start) < ms:
            self.feed()
            try:
                self.client.poll()
            except Exception:
                pass
            time.sleep_ms(20)

    def _reset(self, why):
        emit("resetting", {"why": why})
        self._flush(300)
        try:
            self.client.disconnect()
        except Exception:
            pass
        time.sleep_ms(100)
        machine.reset()

    # ------------------------------------------------------------------ start-up
    def setup(self):
        cfg = _wait_for_config(self.led)
        self.cfg = cfg
        state = config.read_json("state.json", {})
        if not isinstance(state, dict):
            state = {}
        self.boot = state.get("boots", 0) + 1
        self.wlan = _wait_for_wifi(cfg, self.led)
        _sync_clock(self.led)
        self.boot_time = self._iso()
        config.write_json("state.json", {"boots": self.boot, "lastBoot": self.boot_time})
        if cfg["watchdog_ms"]:
            try:
                self.wdt = machine.WDT(timeout=cfg["watchdog_ms"])
            except TypeError:  # ESP8266: fixed timeout
                self.wdt = machine.WDT()
        gc.collect()
        from app.device_mgmt import Methods, Settings
        from app.offline_queue import FlashQueue
        from app.sensors import Sensors
        from app.telemetry import Telemetry
        from iothub.clock import SystemClock
        from iothub.client import IoTHubClient

        self.clock = SystemClock()
        self.settings = Settings(cfg)
        self.led.enabled = self.settings.values["ledEnabled"]
        self.sensors = Sensors(self.board)
        client = IoTHubClient(
            cfg["connection_string"],
            ca=config.read_ca(cfg),
            port=cfg["mqtt_port"],
            queue_len=8,
            max_inflight=MAX_INFLIGHT,
            bufsize=self.board.get("mqtt_buffer", 2048),
            min_backoff_ms=cfg["reconnect_min_ms"],
            max_backoff_ms=cfg["reconnect_max_ms"],
            jitter_ms=cfg["reconnect_jitter_ms"],
            clock=self.clock,
            log=_log,
        )
        self.client = client
        ring = FlashQueue("queue.bin", cfg["queue_slots"], cfg["queue_slot_bytes"])
        self.telemetry = Telemetry(client, ring, self.boot, MAX_INFLIGHT)
        self.methods = Methods(self)
        self.methods.register(client)
        client.on_desired(self._on_desired)
        client.on_connection(self._on_connection)
        client.on_c2d(self._on_c2d)
        emit("booted", {"version": VERSION, "boot": self.boot, "resetCause": self._cause(),
                        "queued": len(ring), "drops": ring.drops})

    def _iso(self):
        from app.device_mgmt import iso_now

        return iso_now()

    def _cause(self):
        from app.device_mgmt import reset_cause_name

        return reset_cause_name()

    # ------------------------------------------------------------------ callbacks
    def _on_connection(self, connected, reason):
        self.led.set(connected)
        emit("hub", {"connected": connected, "reason": reason})
        if connected:
            self.report_due = True

    def _on_desired(self, desired, version, full):
        acks = self.settings.apply(desired, version)
        if acks:
            self.led.enabled = self.settings.values["ledEnabled"]
            self.led.set(self.client.is_connected())
            self.report(acks)
            emit("desired", {"version": version, "applied": self.settings.values})
            if "telemetryInterval" in acks:
                self.next_telemetry = time.ticks_add(time.ticks_ms(), self.settings.values["telemetryInterval"] * 1000)

    def _on_c2d(self, body, props):
        emit("c2d", {"bytes": len(body)})

    # ------------------------------------------------------------------ reporting
    def _facts(self):
        from app import wifi

        gc.collect()
        link = wifi.info(self.wlan)
        link["hubConnects"] = self.client.connects
        return {
            "app": {"version": VERSION, "firmware": _firmware_name(), "board": self.board.get("name", "unknown")},
            "device": {"freeHeap": gc.mem_free(), "resetCause": self._cause(), "bootCount": self.boot,
                       "lastBoot": self.boot_time},
            # Top level, as the device-management reference queries it: properties.reported.connectivity.type
            "connectivity": link,
            "queue": {"pending": len(self.telemetry.ring), "dropped": self.telemetry.dropped()},
        }

    def _report_firmware(self):
        state = self.fwstate
        fw = {"currentFwVersion": VERSION, "pendingFwVersion": "", "fwUpdateStatus": "current",
              "fwUpdateSubstatus": ""}
        done = None
        if state.get("rolledback"):
            fw["fwUpdateStatus"] = "rolledback"
            fw["fwUpdateSubstatus"] = state.get("reason", "")

            def done(status, version):
                if status in (200, 204):
                    import fwguard

                    fwguard.save({})
        elif state.get("pending"):
            if state["pending"] != VERSION:
                fw["fwUpdateStatus"] = "error"
                fw["fwUpdateSubstatus"] = "booted %s, expected %s" % (VERSION, state["pending"])

            def done(status, version):
                if status in (200, 204):
                    import fwguard

                    fwguard.confirm()
                    emit("fw_confirmed", {"version": VERSION})
        self.report({"firmware": fw, "iothubDM": {"reboot": {"lastReboot": self.boot_time}}}, done)
        emit("fw_status", {"status": fw["fwUpdateStatus"], "version": VERSION})

    def report_facts(self):
        if not self.fw_reported:
            self._report_firmware()
            self.fw_reported = True
        self.report(self._facts())
        self.report_due = False
        self.next_report = time.ticks_add(time.ticks_ms(), self.settings.values["reportInterval"] * 1000)

    # ------------------------------------------------------------------ actions
    def _fw_report(self, status, substatus, pending):
        self.report({"firmware": {"currentFwVersion": VERSION, "pendingFwVersion": pending,
                                  "fwUpdateStatus": status, "fwUpdateSubstatus": substatus}})
        emit("fw_status", {"status": status, "detail": substatus, "version": VERSION})
        self._flush(50)

    def run_action(self):
        name, arg = self.methods.action
        if name == "reboot":
            self._reset("reboot")
        elif name == "factoryReset":
            from app.device_mgmt import wipe_for_factory_reset

            wipe_for_factory_reset()
            emit("factory_reset", {})
            self._reset("factoryReset")
        elif name == "firmwareUpdate":
            from app import fwupdate

            gc.collect()
            version = fwupdate.run(arg, config.read_ca(self.cfg), self.board.get("upload_chunk", 1024),
                                   self._fw_report, self.feed)
            if version:
                self._fw_report("rebooting", "", version)
                self._reset("firmwareUpdate")
        elif name == "uploadFile":
            self._upload(arg[0], arg[1])
        self.methods.action = None  # until here another long method is answered 409
        emit("action_done", {"name": name})
        gc.collect()

    def _upload_progress(self, sent, total):
        self.feed()  # a long upload must not look like a hang to the watchdog

    def _upload(self, path, blob):
        result = {"path": path, "blobName": blob}
        try:
            done = self.client.upload_file(path, blob, progress=self._upload_progress,
                                           chunk_size=self.board.get("upload_chunk", 1024))
            result["status"] = "done" if done.get("isSuccess") else "error"
            result["statusCode"] = done.get("statusCode")
            result["bytes"] = done.get("bytes")
        except Exception as e:
            result["status"] = "error"
            result["error"] = "%s: %s" % (type(e).__name__, e)
        self.report({"lastUpload": result})
        emit("upload", result)

    # ------------------------------------------------------------------ the loop
    def loop(self):
        client = self.client
        from iothub.client import FAILED, IDLE
        from iothub.errors import AuthError

        now = time.ticks_ms()
        # Set before connecting: callbacks (a desired patch) may run inside connect().
        self.next_telemetry = now
        self.next_report = now
        self.next_wifi = now
        try:
            client.connect()
        except AuthError:
            pass  # handled below like a refused reconnect
        except Exception as e:  # network errors: poll() retries with backoff
            emit("hub_error", {"error": repr(e)[:120]})
            print("hub: first connect failed:", repr(e))
        while True:
            self.feed()
            if client.state == FAILED or client.state == IDLE:
                # FAILED: the hub refused the token: fix the clock, then retry. IDLE: connect()
                # raised something the session does not retry by itself (a TLS stack without
                # an API the library expects, say): keep trying rather than sit idle for months.
                self.led.blink(ledmod.HUB)
                if client.state == FAILED:
                    _sync_clock(self.led, self.feed)
                time.sleep_ms(CONFIG_RETRY_MS)
                self.feed()
                try:
                    client.connect()
                except Exception as e:
                    emit("hub_error", {"error": repr(e)[:120]})
            try:
                client.poll()
            except AuthError:
                pass
            # Drain the flash ring before adding to it: right after a reconnect a full ring must
            # not drop its oldest message for the new one.
            self.telemetry.drain()
            now = time.ticks_ms()
            if time.ticks_diff(now, self.next_telemetry) >= 0:
                self.next_telemetry = time.ticks_add(now, self.settings.values["telemetryInterval"] * 1000)
                body = self.telemetry.make(self.sensors.read(), self.clock.time())
                self.telemetry.send(body)
            if client.is_connected() and (self.report_due or time.ticks_diff(now, self.next_report) >= 0):
                self.report_facts()
            if self.methods.action is not None:
                self.run_action()
            if time.ticks_diff(now, self.next_wifi) >= 0:
                self.next_wifi = time.ticks_add(now, 5000)
                if not self.wlan.isconnected():
                    emit("wifi_lost", {})
                    try:
                        self.wlan.connect(self.cfg["wifi"]["ssid"], self.cfg["wifi"].get("password", ""))
                    except OSError:
                        pass
            time.sleep_ms(POLL_MS)


def run(fwstate=None):
    app = App(fwstate)
    app.setup()
    app.loop()
