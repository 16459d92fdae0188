"""The interpreter's own `time`, as the shared device-side `time` (peripherals/netmodules/time.py)
imports it under the name `utime`: ticks from the board's power-up that wrap at 2**30, and
conversions counted from 1970. The board's clock (epoch 2000, its RTC) is that module's business."""

import calendar as _calendar
import time as _host_time

from hostemu import context as _context

_TICKS_PERIOD = 1 << 30  # MICROPY_PY_TIME_TICKS_PERIOD of the ESP ports
_TICKS_MAX = _TICKS_PERIOD - 1
_TICKS_HALF = _TICKS_PERIOD // 2


def _uptime() -> float:
    return _host_time.monotonic() - _context.current().boot_monotonic


def ticks_ms() -> int:
    return int(_uptime() * 1000) & _TICKS_MAX


def ticks_us() -> int:
    return int(_uptime() * 1_000_000) & _TICKS_MAX


def ticks_add(ticks: int, delta: int) -> int:
    return (ticks + delta) & _TICKS_MAX


def ticks_diff(ticks1: int, ticks2: int) -> int:
    return ((ticks1 - ticks2 + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF


def gmtime(secs: int) -> tuple:
    """(year, month, mday, hour, minute, second, weekday, yearday), weekday 0 = Monday."""
    t = _host_time.gmtime(int(secs))
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_wday, t.tm_yday)


def mktime(t: tuple) -> int:
    year, month, mday, hour, minute, second = t[:6]
    return _calendar.timegm((year, month, mday, hour, minute, second, 0, 0, 0))
