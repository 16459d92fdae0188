"""One life of a simulated board, from reset to reset: runs boot.py then main.py from the board's
folder as device code (see `hostemu.importer`), then ends with a code that tells the supervisor
what happened (`hostemu.context.EXIT_*`)."""

from __future__ import annotations

import builtins
import os
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path

from hostemu import console, context, importer
from hostemu.peripherals.protocol import VMStop


def _run_script(path: Path, trace_heap: bool) -> int | None:
    """Run one script as the board runs it; return an exit code to stop, or None to go on."""
    try:
        code = compile(path.read_bytes(), str(path), "exec")
        if trace_heap and not tracemalloc.is_tracing():
            tracemalloc.start()
        exec(code, {"__name__": "__main__", "__file__": str(path), "__builtins__": builtins})
    except SystemExit as stop:
        code = stop.code
        return code if isinstance(code, int) else 0
    except BaseException as exc:  # the board prints any uncaught error and goes on to the REPL
        sys.stdout.write(console.micropython_traceback(exc, context.current().fs_root, "\n"))
        sys.stdout.flush()
        return context.EXIT_EXCEPTION
    return None


def attach_services(board: context.BoardContext) -> None:
    """The host services the device-side modules call (through hostemu.inproc): the same ones the
    VM's bridge answers, over the same board model."""
    from hostemu import inproc
    from hostemu.mp import network
    from hostemu.peripherals import BoardClock, ClockService, ServiceHost, install_board_services
    from hostemu.peripherals.netsvc import NetService

    host = ServiceHost()
    host.register_service("socket", NetService(link_up=network.is_link_up))
    host.register_service("clock", ClockService(BoardClock(board), lambda: False))
    machine = install_board_services(host, board)
    inproc.attach(host)

    def watch() -> None:
        # The watchdog runs out even while device code makes no call (a loop that hangs).
        while True:
            time.sleep(0.05)
            try:
                machine.check_watchdog()
            except VMStop as stop:
                inproc.end(stop.status)

    threading.Thread(target=watch, name="watchdog", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = context.board_arguments("hostemu.board_process")
    parser.add_argument("--no-heap-trace", action="store_true")
    parser.add_argument("--console", action="store_true",
                        help="stdin/stdout are the board's UART: Ctrl-C interrupts, the REPL follows main.py")
    args = parser.parse_args(argv)
    board = context.board_from_arguments(args)
    fs_root = board.fs_root
    context.install(board)
    sys.stdout.reconfigure(line_buffering=True)
    os.chdir(fs_root)
    sys.path[0:0] = [str(fs_root), str(fs_root / "lib")]
    device_importer = importer.install(fs_root)
    attach_services(board)
    # The emulation layer's own modules are the board's ROM: load them before the heap is
    # measured (from the first script on), so gc.mem_alloc() counts what device code allocates.
    for name in importer.SHIMMED:
        device_importer.shim(name)

    uart = console.Uart() if args.console else None
    if uart:
        # Ctrl-C on the console must interrupt even when this process was started with SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # A soft reset from the raw REPL comes back to the raw REPL, running boot.py but not main.py.
    raw_marker = board.private_dir / "raw_repl"
    raw_repl = raw_marker.exists()
    raw_marker.unlink(missing_ok=True)
    code = None
    for name in ("boot.py",) if raw_repl else ("boot.py", "main.py"):
        script = fs_root / name
        if script.exists():
            if uart:
                uart.script_running = True
            code = _run_script(script, not args.no_heap_trace)
            if uart:
                uart.script_running = False
            if code is not None:
                break
    if uart is None:
        return code if code is not None else context.EXIT_RETURNED
    return console.Repl(uart, board).run(raw=raw_repl)


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: device code may leave a watchdog thread or sockets behind.
    os._exit(exit_code)
