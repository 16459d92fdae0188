# `time` for a board on the unix port. Ticks and sleeps are the port's own (no bridge call on the
# hot path); what a board's RTC answers is the board's: time(), gmtime(), localtime() and mktime()
# count from the board port's epoch (2000-01-01 on the ESP ports, as an int) and follow the
# board's RTC, which reads 2000-01-01 after power-up until NTP or machine.RTC sets it. So a SAS
# token made before the clock was set is as stale here as on a board.

from utime import sleep, sleep_ms, sleep_us, ticks_add, ticks_cpu, ticks_diff, ticks_ms, ticks_us  # noqa: F401
import utime as _t
import _hostemu

_clock = [0, 0]  # [unix seconds of the board's epoch, board RTC seconds - host unix seconds]


def _sync():
    # Called at import and by _hostemu.rtc_changed() after ntptime/RTC set the board's clock.
    epoch = _hostemu.call("clock", "epoch_unix")
    _clock[0] = epoch
    _clock[1] = _hostemu.call("clock", "rtc_seconds") + epoch - int(_t.time())


_sync()


def time():
    return int(_t.time()) + _clock[1] - _clock[0]


def time_ns():
    return _t.time_ns() + (_clock[1] - _clock[0]) * 1000000000


def gmtime(secs=None):
    return _t.gmtime((time() if secs is None else secs) + _clock[0])[:8]


localtime = gmtime


def mktime(t):
    return _t.mktime(tuple(t[:6]) + (0, 0, 0)) - _clock[0]
