# MicroPython's `ntptime` for the hostemu VM: the parent's clock stands in for the NTP server, as
# in the CPython runtime; it needs the Wi-Fi link (OSError ETIMEDOUT without), and settime() sets
# the board's RTC, which time.time() then reads.

import _hostemu

host = "pool.ntp.org"
timeout = 1


def time():
    return _hostemu.call("ntptime", "time")


def settime():
    _hostemu.call("ntptime", "settime")
    _rtc_changed()


def _rtc_changed():
    # Where `time` keeps its own copy of the RTC (the unix port's), it must hear of the change.
    hook = getattr(_hostemu, "rtc_changed", None)
    if hook is not None:
        hook()
