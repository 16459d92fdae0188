# MicroPython's `machine` for a simulated board, on every runtime (CPython, the WebAssembly VM, the
# unix port). Everything is answered by the host's "machine" service over the board model
# (hostemu.mp.machine): reset() ends the run and the supervisor starts the next one with
# reset_cause() SOFT_RESET.

from micropython import const
import _hostemu

_call = _hostemu.call
_SVC = "machine"


def _causes():
    import json

    return json.loads(_call(_SVC, "causes"))


_c = _causes()
PWRON_RESET = _c["PWRON_RESET"]
HARD_RESET = _c["HARD_RESET"]
WDT_RESET = _c["WDT_RESET"]
DEEPSLEEP_RESET = _c["DEEPSLEEP_RESET"]
SOFT_RESET = _c["SOFT_RESET"]
del _c

WLAN_WAKE = const(3)
PIN_WAKE = const(2)
RTC_WAKE = const(4)
SLEEP = const(2)
DEEPSLEEP = const(4)


def reset():
    _call(_SVC, "reset")


def soft_reset():
    _call(_SVC, "soft_reset")


def reset_cause():
    return _call(_SVC, "reset_cause")


def wake_reason():
    return RTC_WAKE if reset_cause() == DEEPSLEEP_RESET else 0


def deepsleep(time_ms=0):
    _call(_SVC, "deepsleep", int(time_ms))


def lightsleep(time_ms=0):
    import time

    time.sleep_ms(time_ms)


def idle():
    pass


def unique_id():
    buf = bytearray(16)
    n = _hostemu.call_in(_SVC, "unique_id", _hostemu.addressof(buf), len(buf))
    return bytes(buf[:n])


def freq(hz=None):
    return _call(_SVC, "freq", hz)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


class WDT:
    # Checked by the parent before every bridge call: a board that stops feeding it is reset.
    def __init__(self, id=0, timeout=5000):
        _call(_SVC, "wdt_start", timeout)

    def feed(self):
        _call(_SVC, "wdt_feed")


class RTC:
    # datetime is (year, month, day, weekday, hours, minutes, seconds, subseconds)
    def __init__(self, id=0):
        pass

    def init(self, datetime=None):
        if datetime is not None:
            self.datetime(datetime)

    def datetime(self, datetime=None):
        import time

        if datetime is None:
            y, mo, d, h, mi, s, wd, yd = time.gmtime()
            return (y, mo, d, wd, h, mi, s, 0)
        y, mo, d, wd, h, mi, s = datetime[:7]
        _call("clock", "set_rtc_seconds", time.mktime((y, mo, d, h, mi, s, 0, 0)))
        hook = getattr(_hostemu, "rtc_changed", None)
        if hook is not None:  # the unix port's time keeps its own copy of the RTC
            hook()

    def memory(self, data=None):
        if data is None:
            buf = bytearray(_call(_SVC, "rtc_memory_len"))
            if buf:
                _hostemu.call_in(_SVC, "rtc_memory", _hostemu.addressof(buf), len(buf))
            return bytes(buf)
        _hostemu.call_out(_SVC, "set_rtc_memory", _hostemu.addressof(data), len(data))


class Pin:
    IN = const(1)
    OUT = const(3)
    OPEN_DRAIN = const(7)
    PULL_UP = const(2)
    PULL_DOWN = const(1)
    IRQ_RISING = const(1)
    IRQ_FALLING = const(2)

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self._id = id
        _call(_SVC, "pin_init", id, mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        _call(_SVC, "pin_init", self._id, mode, pull, value)

    def value(self, level=None):
        if level is None:
            return _call(_SVC, "pin_value", self._id)
        _call(_SVC, "pin_value", self._id, 1 if level else 0)

    def __call__(self, level=None):
        return self.value(level)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3, **kwargs):
        self._irq = handler

    def __repr__(self):
        return "Pin(%d)" % self._id


class ADC:
    # An analog input with nothing wired to it reads mid-scale noise.
    ATTN_0DB = const(0)
    ATTN_11DB = const(3)
    WIDTH_12BIT = const(3)

    def __init__(self, pin, atten=None):
        self._pin = pin

    def read_u16(self):
        import os

        return 32768 + os.urandom(1)[0] - 128

    def read(self):
        return self.read_u16() >> 4

    def read_uv(self):
        return self.read_u16() * 3300000 // 65535

    def atten(self, value):
        pass
