"""The status LED (board.json ``status_led``): on while connected, blink codes for trouble.

Blink counts: 2 = config problem, 3 = no Wi-Fi, 4 = no clock, 5 = hub unreachable.
"""

import time

CONFIG = 2
WIFI = 3
CLOCK = 4
HUB = 5


class Led:
    def __init__(self, board):
        self._pin = None
        self.enabled = True
        spec = board.get("status_led") or {}
        try:
            from machine import Pin

            if isinstance(spec.get("pin"), int):
                self._pin = Pin(spec["pin"], Pin.OUT)
        except Exception:  # no LED (or no such pin): run without one
            self._pin = None
        self._low = bool(spec.get("active_low"))

    def set(self, on):
        if self._pin is not None:
            on = bool(on) and self.enabled
            self._pin.value(0 if on == self._low else 1)

    def blink(self, count, ms=150):
        """Blink ``count`` times (blocking ``2 * count * ms``): a code a person can count."""
        for _ in range(count):
            self.set(True)
            time.sleep_ms(ms)
            self.set(False)
            time.sleep_ms(ms)
