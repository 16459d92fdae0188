"""One life of a simulated board in the MicroPython VM (`hostemu run --runtime vm`): boot.py then
main.py from the board folder run in a fresh VM; the process exits with the same codes as the
CPython runtime's `hostemu.board_process` (`hostemu.context.EXIT_*`), so the same supervisor
restarts it with the reset cause the firmware will read."""

from __future__ import annotations

import json
import sys

from hostemu import context

from hostemu.peripherals import BOARD_MODULES, BoardClock, install_board_services
from hostemu.peripherals.results import board_exit_code, show

from .bridge import MicroPythonVM

# The VM's own heap limit is the interpreter's (it grows on demand): start at the board's free heap.
DEFAULT_TIMEOUT = 10 * 365 * 24 * 3600.0  # a board runs until it is reset or switched off


def make_vm(board: context.BoardContext, *, hosts: dict[str, str] | None = None,
            timeout: float = DEFAULT_TIMEOUT, **kwargs: object) -> MicroPythonVM:
    """A VM that is this board: its folder, its clock and RTC, its peripherals."""
    from hostemu.mp import network  # after context.install(board): it reads the board state

    context.install(board)
    vm = MicroPythonVM(board.fs_root, heap_bytes=max(board.profile.heap_bytes, 16 * 1024),
                       clock=BoardClock(board), hosts=hosts, link_up=network.is_link_up,
                       module_dirs=[BOARD_MODULES], timeout=timeout, **kwargs)  # type: ignore[arg-type]
    install_board_services(vm, board)
    return vm


def main(argv: list[str] | None = None) -> int:
    parser = context.board_arguments("hostemu.vm.board_process")
    parser.add_argument("--hosts", default="{}", help="JSON object: host name -> IPv4 address")
    args = parser.parse_args(argv)
    vm = make_vm(context.board_from_arguments(args), hosts=json.loads(args.hosts), on_output=show)
    return board_exit_code(vm.boot, "the MicroPython VM")


if __name__ == "__main__":
    sys.exit(main())
