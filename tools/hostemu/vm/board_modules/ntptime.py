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
