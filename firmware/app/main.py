"""The sensor node: config, Wi-Fi, clock, watchdog, then the loop (telemetry, twin, methods).

``run(fwstate)`` never returns: a missing or broken config.json, no Wi-Fi, no clock or no hub
are retried (with a console message and an LED blink code, see ``app.led``), and whatever
escapes is turned into a reset by /main.py.

What runs once or seldom lives beside this module and is imported with ``iothub.transient``:
``app.config`` and ``app.startup`` at boot, ``app.device_mgmt`` for a desired patch, a method
or the facts report, ``app.actions`` for a method's long work. Run in
place (ROMFS or frozen), the loop then holds only what it uses every time round.
"""

import gc
import time

from app.events import emit
from iothub import transient

POLL_MS = 50


class App:
    def __init__(self, fwstate):
        self.fwstate = fwstate or {}
        self.board = None  # board.json and the LED come with the rest in setup()
        self.led = None
        self.wdt = None
        self.client = None
        self.report_due = True
        self.fw_reported = False
        self.values = None  # the settings desired properties control (app.device_mgmt)
        self.action = None  # (name, argument): the long work a direct method left for the loop

    # ------------------------------------------------------------------ helpers
    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def report(self, patch, cb=None):
        self.client.patch_reported(patch, cb)

    # ------------------------------------------------------------------ start-up
    def setup(self):
        # The session's largest blocks first, while the heap is still whole (iothub.session.
        # reserve): start-up's code and the config it parses come and go after them, leaving the
        # heap free in pieces, and MicroPython's GC does not compact. Taken later, an ESP8266
        # found no 2 KB block in 14 KB of free heap.
        from iothub.session import reserve

        board = transient("app.store").read_json("board.json", {})
        self.board = board if isinstance(board, dict) else {}
        reserved = reserve(self.board.get("mqtt_buffer", 2048))
        # The loop's library modules next, for the same reason: their tables (MQTTClient's is a
        # 464-byte block) are what an ESP8266's start-up could not find whole after parsing the
        # config (1.3 KB less heap in place on the unix port, measured).
        import iothub.client  # noqa: F401
        import iothub.mqtt  # noqa: F401

        transient("app.startup").setup(self, reserved)

    # ------------------------------------------------------------------ callbacks
    def on_connection(self, connected, reason):
        self.led.set(connected)
        emit("hub", {"connected": connected, "reason": reason})
        if connected:
            self.report_due = True

    # Desired patches, direct methods and the facts report are seldom: app.device_mgmt is
    # imported for each and released (run in place, it holds no heap in between).
    def on_desired(self, desired, version, full):
        transient("app.device_mgmt").on_desired(self, desired, version)

    def on_method(self, name, payload):
        return transient("app.device_mgmt").method(self, name, payload)

    def on_c2d(self, body, props):
        emit("c2d", {"bytes": len(body)})

    # ------------------------------------------------------------------ the loop
    def loop(self):
        client = self.client
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
        short = 0  # loops in a row that ran out of heap
        while True:
            self.feed()
            try:
                self._duties(client)
                short = 0
            except MemoryError:
                # No block big enough for one allocation (a fragmented heap): what the failed
                # duty held is garbage now. Telemetry waits on flash and the session keeps its
                # state, so collect and carry on: a duty that did not finish runs again at the
                # next loop (the facts report stays due). Only a heap that stays short for
                # three loops in a row is worth a reset (main.py), which starts it afresh.
                gc.collect()
                short += 1
                if short >= 3:
                    raise
                emit("low_memory", {"free": gc.mem_free(), "times": short})
            time.sleep_ms(POLL_MS)

    def _duties(self, client):
        """One pass of the loop: the session, telemetry, facts, actions, Wi-Fi."""
        from iothub.client import FAILED, IDLE  # loaded since setup: found, not loaded
        from iothub.errors import AuthError

        if client.state == FAILED or client.state == IDLE:
            # FAILED: the hub refused the token: fix the clock, then retry. IDLE: connect()
            # raised something the session does not retry by itself (a TLS stack without
            # an API the library expects, say): keep trying rather than sit idle for months.
            transient("app.startup").recover(self, client.state == FAILED)
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
            self.next_telemetry = time.ticks_add(now, self.values["telemetryInterval"] * 1000)
            body = self.telemetry.make(self.sensors.read(), self.clock.time())
            self.telemetry.send(body)
        if client.is_connected() and (self.report_due or time.ticks_diff(now, self.next_report) >= 0):
            transient("app.device_mgmt").report_facts(self)
        if self.action is not None:
            transient("app.actions").run(self)
        if time.ticks_diff(now, self.next_wifi) >= 0:
            self.next_wifi = time.ticks_add(now, 5000)
            if not self.wlan.isconnected():
                emit("wifi_lost", {})
                try:
                    self.wlan.connect(self.cfg["wifi"]["ssid"], self.cfg["wifi"].get("password", ""))
                except OSError:
                    pass


def run(fwstate=None):
    app = App(fwstate)
    app.setup()
    app.loop()
