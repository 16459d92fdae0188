"""MicroPython's `gc`, with the heap as the board's profile sizes it.

`mem_alloc()` is the Python heap device code holds (tracemalloc: what was allocated on a line of
device code since boot and is still alive), so it moves with what device code keeps alive; it is a
CPython figure, not a MicroPython one (objects are bigger here): the MicroPython runtimes (VM,
unix port) give the real one.
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


def _device_files() -> list:
    # Allocations made on a line of device code: the board's files and the device-side modules
    # every runtime shares. What the host services allocate while answering them (the TLS
    # session, host sockets) lives outside the board's heap, as on a board it lives in C.
    from hostemu.importer import DEVICE_MODULE_DIRS

    roots = [str(_context.current().fs_root), *(str(d) for d in DEVICE_MODULE_DIRS)]
    return [_tracemalloc.Filter(True, root + "/*") for root in roots]


def mem_alloc() -> int:
    if not _tracemalloc.is_tracing():
        return 0
    snapshot = _tracemalloc.take_snapshot().filter_traces(_device_files())
    return sum(stat.size for stat in snapshot.statistics("filename"))


def mem_free() -> int:
    return max(0, _context.current().profile.heap_bytes - mem_alloc())


def threshold(amount: int | None = None) -> int | None:
    return -1 if amount is None else None
