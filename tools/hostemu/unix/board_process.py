"""One life of a simulated board on MicroPython's unix port (`hostemu run --runtime unix`): boot.py
then main.py from the board folder in a fresh `micropython -X heapsize=<the profile's heap>`; the
process exits with the same codes as the other runtimes' board processes (`hostemu.context.EXIT_*`),
so the same supervisor restarts it with the reset cause the firmware will read."""

from __future__ import annotations

import sys

from hostemu import context
from hostemu.mp import romfs
from hostemu.peripherals import BOARD_MODULES, BoardClock, ClockService, install_board_services
from hostemu.peripherals.results import board_exit_code, show

from .runtime import MicroPythonUnix

DEFAULT_TIMEOUT = 10 * 365 * 24 * 3600.0  # a board runs until it is reset or switched off


_PROBE_HEAP = 1024 * 1024
# The unix port is 64-bit: pointers, small objects and GC blocks (32 bytes, 16 on a 32-bit chip)
# are bigger, buffers are not. So the same code holds more live heap there than in the 32-bit
# WebAssembly VM, by how much depends on what it holds: the bare library 1.29-1.45x phase by
# phase (`make bench` prints the ratios every run), the firmware's modules 1.41-1.53x (measured
# 2026-12-02). A board profile's free heap is scaled by 1.4: at or below what the firmware
# scenarios hold, which are the ones that run out first (uploadFile and firmwareUpdate failed
# at 1.3), and within 2 % of the library's connected phases.
WORD_SCALE = 1.4


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
    # The firmware mounts its ROMFS partition at boot when it holds an image (`boardkit deploy`).
    partition = romfs.path(board) if romfs.size(board) else None
    runtime = MicroPythonUnix(board.fs_root, heap_bytes=_PROBE_HEAP, module_dirs=[BOARD_MODULES],
                              timeout=timeout, romfs=partition, **kwargs)  # type: ignore[arg-type]
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
