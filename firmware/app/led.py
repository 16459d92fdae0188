"""The status LED (board.json ``status_led``): on while connected, blink codes for trouble.

Blink counts: 2 = config problem, 3 = no Wi-Fi, 4 = no clock, 5 = hub unreachable.
"""

import time

CONFIG = 2
WIFI = 3
CLOCK = 4
HUB = 5


# One LED a board: module state rather than a class and its instance, which would cost heap in
# place for nothing (app.led is this module: app.led.set(...), app.led.enabled = ...).
_pin = None
_low = False
enabled = True


def setup(board):
    """Find the LED board.json names (none: run without one)."""
    global _pin, _low
    spec = board.get("status_led") or {}
    _pin = None
    try:
        from machine import Pin

        if isinstance(spec.get("pin"), int):
            _pin = Pin(spec["pin"], Pin.OUT)
    except Exception:  # no LED (or no such pin): run without one
        _pin = None
    _low = bool(spec.get("active_low"))


def set(on):
    if _pin is not None:
        on = bool(on) and enabled
        _pin.value(0 if on == _low else 1)


def blink(count, ms=150):
    """Blink ``count`` times (blocking ``2 * count * ms``): a code a person can count."""
    for _ in range(count):
        set(True)
        time.sleep_ms(ms)
        set(False)
        time.sleep_ms(ms)
