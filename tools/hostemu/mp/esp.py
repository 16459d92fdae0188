"""MicroPython's `esp` module (the parts common to the ESP ports)."""

from hostemu import context as _context

SLEEP_NONE = 0
SLEEP_LIGHT = 1
SLEEP_MODEM = 2


def flash_size() -> int:
    return _context.current().profile.flash_bytes


def flash_user_start() -> int:
    return 0x200000


def osdebug(level, *args) -> None:
    return None


def sleep_type(sleep_type=None):
    return SLEEP_NONE if sleep_type is None else None


def check_fw() -> bool:
    return True
