"""The clock the session reads: MicroPython ticks plus Unix time whatever the port's epoch.

On CPython (tests, tools) ``time`` has no ticks functions: tiny equivalents stand in. Tests
pass their own clock object with the same five methods instead of this one.
"""

import time

try:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
    sleep_ms = time.sleep_ms
except AttributeError:  # CPython: same wrap-around arithmetic as MicroPython's 2**30 period
    _PERIOD = 1 << 30
    _HALF = 1 << 29

    def ticks_ms():
        return int(time.monotonic() * 1000) & (_PERIOD - 1)

    def ticks_diff(a, b):
        d = (a - b) & (_PERIOD - 1)
        return d - _PERIOD if d >= _HALF else d

    def ticks_add(a, d):
        return (a + d) & (_PERIOD - 1)

    def sleep_ms(ms):
        time.sleep(ms / 1000)


class SystemClock:
    """``ticks_ms``, ``ticks_diff``, ``ticks_add``, ``sleep_ms`` and ``time()`` in Unix seconds.

    ``time()`` adds the offset of the port's epoch, found from ``time.gmtime(0)[0]``
    (ESP32/ESP8266 count from 2000). It is only right once the RTC is set (NTP).
    """

    def __init__(self):
        from iothub import transient

        self.offset = transient("iothub.sas").epoch_offset(time.gmtime(0)[0])
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self.ticks_add = ticks_add
        self.sleep_ms = sleep_ms

    def time(self):
        return int(time.time()) + self.offset
