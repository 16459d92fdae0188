# MicroPython's `time` as the ESP32/ESP8266 ports have it, for the hostemu VM.
#
# The WebAssembly port counts time.time() from 1970 and returns a float; the ESP ports count
# from 2000-01-01 and return an int, and their RTC starts at 2000-01-01 at power-up until NTP
# or machine.RTC sets it. Wall-clock time therefore comes from the parent's clock (which holds
# the board's RTC); gmtime/mktime convert with the 2000 epoch.
#
# ticks: with the parent's real clock, ticks come from the interpreter (no bridge call); with a
# virtual clock (tests that pass the clock in) they come from the parent, and sleeps advance it.

import utime as _t
import _hostemu

_call = _hostemu.call
_EPOCH_OFFSET = _call("clock", "epoch_unix")  # the board port's epoch in Unix seconds (2000 on ESP)
_VIRTUAL = _call("clock", "mode") == "virtual"

ticks_add = _t.ticks_add
ticks_diff = _t.ticks_diff

if _VIRTUAL:

    def ticks_ms():
        return _call("clock", "ticks_ms")

    def ticks_us():
        return _call("clock", "ticks_us")

else:
    ticks_ms = _t.ticks_ms
    ticks_us = _t.ticks_us

ticks_cpu = ticks_us


def sleep_us(us):
    if us > 0:
        _call("clock", "sleep_us", int(us))


def sleep_ms(ms):
    if ms > 0:
        _call("clock", "sleep_us", int(ms) * 1000)


def sleep(seconds):
    if seconds > 0:
        _call("clock", "sleep_us", int(seconds * 1000000))


def time():
    return _call("clock", "rtc_seconds")


def time_ns():
    return int(_call("clock", "rtc_ns"))


def gmtime(secs=None):
    if secs is None:
        secs = time()
    return _t.gmtime(int(secs) + _EPOCH_OFFSET)


localtime = gmtime


def mktime(t):
    return _t.mktime(t) - _EPOCH_OFFSET
