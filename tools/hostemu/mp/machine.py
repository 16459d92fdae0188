"""MicroPython's `machine` for a simulated ESP board.

Resets end the board process with a code its supervisor (`hostemu run`) reads: it starts the
firmware again from boot.py on the same filesystem and `reset_cause()` answers what happened, as
on the chip. Pins have no wires: they hold the level last written, which is what firmware can see.
"""

import os as _os
import sys as _sys
import threading as _threading
import time as _host_time

from hostemu import context as _context

_causes = _context.current().profile.rules.reset_causes
PWRON_RESET = _causes["PWRON_RESET"]
HARD_RESET = _causes["HARD_RESET"]
WDT_RESET = _causes["WDT_RESET"]
DEEPSLEEP_RESET = _causes["DEEPSLEEP_RESET"]
SOFT_RESET = _causes["SOFT_RESET"]

WLAN_WAKE = 3
PIN_WAKE = 2
RTC_WAKE = 4
SLEEP = 2
DEEPSLEEP = 4


def _end(code: int) -> None:
    # os._exit skips interpreter shutdown, as a chip reset skips any cleanup; flush what was printed.
    try:
        _sys.stdout.flush()
        _sys.stderr.flush()
    finally:
        _os._exit(code)


def reset() -> None:
    _end(_context.EXIT_RESET)


def soft_reset() -> None:
    _end(_context.EXIT_SOFT_RESET)


def reset_cause() -> int:
    return _context.current().reset_cause


def wake_reason() -> int:
    return RTC_WAKE if _context.current().reset_cause == DEEPSLEEP_RESET else 0


def deepsleep(time_ms: int = 0) -> None:
    (_context.current().private_dir / "deepsleep").write_text(str(int(time_ms)))
    _end(_context.EXIT_DEEPSLEEP)


def lightsleep(time_ms: int = 0) -> None:
    _host_time.sleep(max(0, time_ms) / 1000)


def idle() -> None:
    _host_time.sleep(0.001)


def unique_id() -> bytes:
    return _context.current().unique_id()


_VALID_FREQS = {
    "esp8266": (80_000_000, 160_000_000),
    "esp32": (80_000_000, 160_000_000, 240_000_000),
    "esp32s3": (80_000_000, 160_000_000, 240_000_000),
    "esp32c3": (80_000_000, 160_000_000),
}


def freq(hz: int | None = None) -> int | None:
    board = _context.current()
    if hz is None:
        return board.cpu_freq
    allowed = _VALID_FREQS[board.profile.chip]
    if hz not in allowed:
        raise ValueError("frequency must be 80MHz, 160MHz" + (" or 240MHz" if len(allowed) > 2 else ""))
    board.cpu_freq = hz
    return None


def disable_irq() -> int:
    return 0


def enable_irq(state: int = 0) -> None:
    return None


class WDT:
    """Resets the board when not fed within `timeout` ms. Once started it cannot be stopped."""

    _started: "WDT | None" = None

    def __init__(self, id: int = 0, timeout: int = 5000) -> None:
        if timeout < 1:
            raise ValueError("WDT timeout too short")
        self._timeout = timeout / 1000
        self._deadline = _host_time.monotonic() + self._timeout
        if WDT._started is None:
            WDT._started = self
            watcher = _threading.Thread(target=self._watch, name="hostemu-wdt", daemon=True)
            watcher.start()
        else:
            # A second WDT() on the ESP ports reconfigures the one watchdog.
            WDT._started._timeout = self._timeout
            WDT._started.feed()

    def feed(self) -> None:
        self._deadline = _host_time.monotonic() + self._timeout

    def _watch(self) -> None:
        while True:
            left = self._deadline - _host_time.monotonic()
            if left <= 0:
                print("hostemu: watchdog timeout, resetting", file=_sys.stderr)
                _end(_context.EXIT_WATCHDOG)
            _host_time.sleep(min(left, 0.05))


class RTC:
    """The real-time clock; datetime is (year, month, day, weekday, hours, minutes, seconds, subseconds)."""

    def __init__(self, id: int = 0) -> None:
        pass

    def init(self, datetime: tuple | None = None) -> None:
        if datetime is not None:
            self.datetime(datetime)

    def datetime(self, datetime: tuple | None = None) -> tuple | None:
        from hostemu.mp import time as board_time

        board = _context.current()
        if datetime is None:
            now = board.rtc_seconds()
            y, mo, d, h, mi, s, wd, _yd = board_time.gmtime(int(now))
            return (y, mo, d, wd, h, mi, s, int((now % 1) * 1_000_000))
        y, mo, d, _wd, h, mi, s = tuple(datetime)[:7]
        sub = datetime[7] if len(datetime) > 7 else 0
        board.set_rtc_seconds(board_time.mktime((y, mo, d, h, mi, s, 0, 0)) + sub / 1_000_000)
        return None

    def memory(self, data: bytes | None = None) -> bytes | None:
        board = _context.current()
        if data is None:
            return bytes.fromhex(board.load_private("rtc_memory", ""))
        if len(data) > 2048:
            raise ValueError("buffer too long")
        board.save_private("rtc_memory", bytes(data).hex())
        return None


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id: int, mode: int = -1, pull: int = -1, value: int | None = None) -> None:
        rules = _context.current().profile.rules
        if not isinstance(id, int) or not 0 <= id < rules.gpio_count:
            raise ValueError("invalid pin")
        self._id = id
        self._mode = mode
        self.init(mode, pull, value)

    def init(self, mode: int = -1, pull: int = -1, value: int | None = None) -> None:
        rules = _context.current().profile.rules
        if mode in (Pin.OUT, Pin.OPEN_DRAIN) and self._id in rules.input_only_pins:
            raise ValueError("pin can only be input")
        if mode != -1:
            self._mode = mode
        if value is not None:
            self.value(value)

    def value(self, level: int | None = None) -> int | None:
        pins = _context.current().pins
        if level is None:
            return pins.get(self._id, 0)
        pins[self._id] = 1 if level else 0
        return None

    __call__ = value

    def on(self) -> None:
        self.value(1)

    def off(self) -> None:
        self.value(0)

    def irq(self, handler=None, trigger: int = 3, **kwargs) -> None:
        self._irq = handler

    def __repr__(self) -> str:
        return f"Pin({self._id})"


class ADC:
    """An analog input with nothing wired to it reads mid-scale noise."""

    ATTN_0DB = 0
    ATTN_11DB = 3
    WIDTH_12BIT = 3

    def __init__(self, pin, atten: int | None = None) -> None:
        self._pin = pin

    def read_u16(self) -> int:
        return 32768 + int.from_bytes(_os.urandom(1), "little") - 128

    def read(self) -> int:
        return self.read_u16() >> 4

    def read_uv(self) -> int:
        return self.read_u16() * 3_300_000 // 65535

    def atten(self, value: int) -> None:
        return None
