"""MicroPython's `time`: ticks that wrap, and wall-clock time counted from the port's epoch.

On the ESP ports `time.time()` counts from 2000-01-01, not 1970: code that builds a SAS expiry from
it without checking `gmtime(0)` makes tokens that expired 30 years ago. The host keeps that epoch
so the bug shows here, not in the field.
"""

import time as _host_time

from hostemu import context as _context

# ticks wrap at 2**30 on the ESP ports (MICROPY_PY_TIME_TICKS_PERIOD).
_TICKS_PERIOD = 1 << 30
_TICKS_MAX = _TICKS_PERIOD - 1
_TICKS_HALF = _TICKS_PERIOD // 2


def _uptime() -> float:
    return _host_time.monotonic() - _context.current().boot_monotonic


def ticks_ms() -> int:
    return int(_uptime() * 1000) & _TICKS_MAX


def ticks_us() -> int:
    return int(_uptime() * 1_000_000) & _TICKS_MAX


def ticks_cpu() -> int:
    return ticks_us()


def ticks_add(ticks: int, delta: int) -> int:
    return (ticks + delta) & _TICKS_MAX


def ticks_diff(ticks1: int, ticks2: int) -> int:
    return ((ticks1 - ticks2 + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF


def sleep(seconds: float) -> None:
    _host_time.sleep(seconds)


def sleep_ms(ms: int) -> None:
    if ms > 0:
        _host_time.sleep(ms / 1000)


def sleep_us(us: int) -> None:
    if us > 0:
        _host_time.sleep(us / 1_000_000)


def time() -> int:
    return int(_context.current().rtc_seconds())


def time_ns() -> int:
    return int(_context.current().rtc_seconds() * 1_000_000_000)


def gmtime(secs: int | None = None) -> tuple:
    """(year, month, mday, hour, minute, second, weekday, yearday), weekday 0 = Monday."""
    if secs is None:
        secs = time()
    t = _host_time.gmtime(int(secs) + _context.current().epoch_offset)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_wday, t.tm_yday)


localtime = gmtime  # the ESP ports have no time zones


def mktime(t: tuple) -> int:
    import calendar

    year, month, mday, hour, minute, second = t[:6]
    return calendar.timegm((year, month, mday, hour, minute, second, 0, 0, 0)) - _context.current().epoch_offset
