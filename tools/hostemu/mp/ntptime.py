"""MicroPython's `ntptime`: set the RTC from network time.

There is no NTP server to reach from this machine; the host's own clock stands in for it. What is
kept is what the firmware depends on: it needs a Wi-Fi link, and until `settime()` runs the board's
clock reads the year 2000.
"""

import errno as _errno
import time as _host_time

from hostemu import context as _context
from hostemu.mp import network as _network

host = "pool.ntp.org"
timeout = 1


def time() -> int:
    if not _network.is_link_up():
        raise OSError(_errno.ETIMEDOUT)
    return int(_host_time.time()) - _context.current().epoch_offset


def settime() -> None:
    _context.current().set_rtc_seconds(time())
