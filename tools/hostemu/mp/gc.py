"""MicroPython's `gc`, with the heap as the board's profile sizes it.

`mem_alloc()` is the Python heap this process has allocated since boot (tracemalloc), so it
moves with what device code keeps alive; it is a CPython figure, not a MicroPython one (objects
are bigger here), and the MicroPython VM runtime gives the real one.
"""

import gc as _host_gc
import tracemalloc as _tracemalloc

from hostemu import context as _context


def collect() -> int:
    return _host_gc.collect()


def enable() -> None:
    _host_gc.enable()


def disable() -> None:
    _host_gc.disable()


def isenabled() -> bool:
    return _host_gc.isenabled()


def mem_alloc() -> int:
    if not _tracemalloc.is_tracing():
        return 0
    return _tracemalloc.get_traced_memory()[0]


def mem_free() -> int:
    return max(0, _context.current().profile.heap_bytes - mem_alloc())


def threshold(amount: int | None = None) -> int | None:
    return -1 if amount is None else None
