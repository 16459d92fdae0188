"""The board model behind the `machine` module (hostemu/peripherals/modules/machine.py, which every
runtime runs): the CPU frequencies a chip takes and the pins, checked against the profile's rules.
Pins have no wires: they hold the level last written, which is what firmware can see. Resets,
the watchdog, the RTC and the unique id are the "machine" service's (peripherals/services.py).
"""

from hostemu import context as _context

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
