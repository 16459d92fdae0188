"""MicroPython's `micropython` module."""

import sys as _sys


def const(value):
    return value


def opt_level(level=None):
    return 0 if level is None else None


def mem_info(verbose=None):
    from hostemu.mp import gc

    print("mem: total=%d, current=%d, peak=%d" % (gc.mem_alloc() + gc.mem_free(), gc.mem_alloc(), gc.mem_alloc()))


def qstr_info(verbose=None):
    print("qstr pool: n_pool=0, n_qstr=0, n_str_data_bytes=0, n_total_bytes=0")


def stack_use():
    return 0


def heap_lock():
    return 0


def heap_unlock():
    return 0


def heap_locked():
    return 0


def alloc_emergency_exception_buf(size):
    return None


def kbd_intr(chr):
    return None


def schedule(func, arg):
    func(arg)


def native(func):
    return func


viper = native


def print_exception(exc, file=_sys.stdout):
    import traceback

    traceback.print_exception(exc, file=file)
