# MicroPython's `esp` (the parts common to the ESP ports) for the hostemu VM.

from micropython import const
import _hostemu

SLEEP_NONE = const(0)
SLEEP_LIGHT = const(1)
SLEEP_MODEM = const(2)


def flash_size():
    return _hostemu.call("esp", "flash_size")


def flash_user_start():
    return 0x200000


def osdebug(level, *args):
    pass


def sleep_type(sleep_type=None):
    return SLEEP_NONE if sleep_type is None else None


def check_fw():
    return True
