"""One life of a simulated board on MicroPython's unix port (`hostemu run --runtime unix`): boot.py
then main.py from the board folder in a fresh `micropython -X heapsize=<the profile's heap>`; the
process exits with the same codes as the other runtimes' board processes (`hostemu.context.EXIT_*`),
so the same supervisor restarts it with the reset cause the firmware will read."""

from __future__ import annotations

import sys

from hostemu import context
from hostemu.peripherals import BOARD_MODULES, BoardClock, ClockService, install_board_services
from hostemu.peripherals.results import board_exit_code, show

from .runtime import MicroPythonUnix

DEFAULT_TIMEOUT = 10 * 365 * 24 * 3600.0  # a board runs until it is reset or switched off


_PROBE_HEAP = 1024 * 1024
# The unix port is 64-bit: pointers, small objects and GC blocks (32 bytes, 16 on a 32-bit chip)
# are bigger, and the same agent holds 1.35-1.56x the live heap it holds in the 32-bit
# WebAssembly VM (both from .mpy; `make bench` measures the ratio every run). A board profile's
# free heap is scaled by 1.5 (the connected agent: 72.0 KB here, 46.2 KB in the VM), at or
# below the ratio of every phase but the first imports.
WORD_SCALE = 1.5


def free_heap_64bit(profile_heap: int) -> int:
    """What a board's free heap (32-bit) is worth on the 64-bit unix port."""
    return int(profile_heap * WORD_SCALE)


def make_board(board: context.BoardContext, *, free_heap: int | None = None, timeout: float = DEFAULT_TIMEOUT,
               **kwargs: object) -> MicroPythonUnix:
    """The unix port as this board: its folder, its peripherals, and a heap that leaves device code
    `free_heap` bytes (default: the profile's `heap_bytes`, a board's gc.mem_free() after boot,
    scaled to 64 bits) on top of what the interpreter and the board modules hold, which a board
    keeps in ROM."""
    context.install(board)
    runtime = MicroPythonUnix(board.fs_root, heap_bytes=_PROBE_HEAP, module_dirs=[BOARD_MODULES],
                              timeout=timeout, **kwargs)  # type: ignore[arg-type]
    install_board_services(runtime, board)
    # machine.RTC().datetime(...) sets the board's RTC record; the unix port's time stays the host's.
    runtime.register_service("clock", ClockService(BoardClock(board), lambda: False))
    baseline = runtime.run(code="pass", timeout=30).baseline.alloc
    runtime.heap_bytes = baseline + (free_heap_64bit(board.profile.heap_bytes) if free_heap is None else free_heap)
    return runtime


def main(argv: list[str] | None = None) -> int:
    args = context.board_arguments("hostemu.unix.board_process").parse_args(argv)
    runtime = make_board(context.board_from_arguments(args), on_output=show)
    return board_exit_code(runtime.boot, "the MicroPython unix port")


if __name__ == "__main__":
    sys.exit(main())
