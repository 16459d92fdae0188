"""One life of a simulated board in the MicroPython VM (`hostemu run --runtime vm`): boot.py then
main.py from the board folder run in a fresh VM; the process exits with the same codes as the
CPython runtime's `hostemu.board_process` (`hostemu.context.EXIT_*`), so the same supervisor
restarts it with the reset cause the firmware will read."""

from __future__ import annotations

import json
import sys

from hostemu import context

from hostemu.peripherals import BOARD_MODULES, BoardClock, install_board_services

from .bridge import MicroPythonVM, VMError, VMTimeout

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
    board = context.board_from_arguments(args)

    def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    vm = make_vm(board, hosts=json.loads(args.hosts), on_output=show)
    try:
        result = vm.boot()
    except VMTimeout:
        return context.EXIT_RETURNED
    except VMError as exc:
        print(f"hostemu: the MicroPython VM failed: {exc}", file=sys.stderr)
        return 2
    if result.stop_reason is not None:  # machine.reset(), deepsleep(), the watchdog
        return result.status
    # main.py returned or raised: a board drops to its REPL; here the run ends.
    return context.EXIT_RETURNED if result.status == 0 else context.EXIT_EXCEPTION


if __name__ == "__main__":
    sys.exit(main())
