"""The board's clocks as the VM sees them: ticks (monotonic) and the RTC behind time.time().

Two clocks, one interface:
- `RealClock`: ticks follow the host's monotonic clock (the VM then reads its own ticks without a
  bridge call); sleeps really wait.
- `ManualClock`: time moves only when the test advances it or device code sleeps: tests pass the
  clock in instead of sleeping.

The RTC counts seconds from the board port's epoch (2000-01-01 for ESP32/ESP8266). Like a board
after power-up it starts unset, at the epoch, unless `rtc_unix` is given; `set_rtc_unix()` is what
an NTP sync or machine.RTC().datetime() will call (through the lead's Board model).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .protocol import DeviceError

EPOCH_2000_UNIX = 946_684_800  # 2000-01-01T00:00:00Z
_TICKS_MASK = (1 << 30) - 1  # MICROPY_PY_TIME_TICKS_PERIOD on the ESP ports and this VM


class _RtcMixin:
    epoch_unix: int
    _rtc_base: float  # RTC seconds (board epoch) at monotonic time _rtc_mark
    _rtc_mark: float

    def _now(self) -> float:
        raise NotImplementedError

    def rtc_seconds(self) -> float:
        """Seconds since the board's epoch, as time.time() on the board counts them."""
        return self._rtc_base + (self._now() - self._rtc_mark)

    def rtc_unix(self) -> float:
        return self.rtc_seconds() + self.epoch_unix

    def set_rtc_unix(self, unix_seconds: float) -> None:
        self._rtc_base = unix_seconds - self.epoch_unix
        self._rtc_mark = self._now()


class RealClock(_RtcMixin):
    mode = "real"

    def __init__(self, *, epoch_unix: int = EPOCH_2000_UNIX, rtc_unix: float | None = None) -> None:
        self.epoch_unix = epoch_unix
        self._start = time.monotonic()
        self._rtc_mark = self._start
        self._rtc_base = 0.0
        if rtc_unix is not None:
            self.set_rtc_unix(rtc_unix)

    def _now(self) -> float:
        return time.monotonic()

    def elapsed_us(self) -> int:
        """Microseconds since the clock was made (the board's power-up)."""
        return int((time.monotonic() - self._start) * 1_000_000)

    def sleep_us(self, us: int, cancelled: Callable[[], bool]) -> None:
        # Sliced so that a stop request or the run's time limit is noticed during a long sleep.
        end = time.monotonic() + us / 1_000_000
        while (left := end - time.monotonic()) > 0:
            if cancelled():
                return
            time.sleep(min(left, 0.05))


class ManualClock(_RtcMixin):
    """A clock that tests drive: `advance(seconds)` from any thread; device sleeps advance it too."""

    mode = "virtual"

    def __init__(self, *, epoch_unix: int = EPOCH_2000_UNIX, rtc_unix: float | None = None) -> None:
        self.epoch_unix = epoch_unix
        self._lock = threading.Lock()
        self._us = 0
        self._rtc_mark = 0.0
        self._rtc_base = 0.0
        self.slept_us = 0  # total the device asked to sleep, for assertions
        if rtc_unix is not None:
            self.set_rtc_unix(rtc_unix)

    def _now(self) -> float:
        return self._us / 1_000_000

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._us += int(seconds * 1_000_000)

    def elapsed_us(self) -> int:
        return self._us

    def sleep_us(self, us: int, cancelled: Callable[[], bool]) -> None:
        with self._lock:
            self._us += us
            self.slept_us += us


Clock = RealClock | ManualClock


class ClockService:
    """The "clock" bridge service that netmodules/time.py calls."""

    def __init__(self, clock: Clock, cancelled: Callable[[], bool]) -> None:
        self.clock = clock
        self._cancelled = cancelled

    def op_mode(self) -> str:
        return self.clock.mode

    def op_ticks_ms(self) -> int:
        return (self.clock.elapsed_us() // 1000) & _TICKS_MASK

    def op_ticks_us(self) -> int:
        return self.clock.elapsed_us() & _TICKS_MASK

    def op_sleep_us(self, us: int) -> None:
        if not isinstance(us, int) or us < 0:
            raise DeviceError("ValueError", "sleep length must be a non-negative int")
        self.clock.sleep_us(us, self._cancelled)

    def op_epoch_unix(self) -> int:
        return self.clock.epoch_unix

    def op_rtc_seconds(self) -> int:
        return int(self.clock.rtc_seconds())

    def op_rtc_ns(self) -> str:
        # As a string: the port's JS layer carries ints of 31 bits only.
        return str(int(self.clock.rtc_seconds() * 1_000_000_000))

    def op_set_rtc_seconds(self, seconds: int | float) -> None:
        self.clock.set_rtc_unix(seconds + self.clock.epoch_unix)
