"""The board's serial console: a UART over the board process's stdin/stdout, and the REPL that
MicroPython runs on it once main.py ends or is interrupted.

The raw REPL and its raw-paste mode follow MicroPython's `shared/runtime/pyexec.c`, which is what
`mpremote` speaks: Ctrl-A enters raw mode ("raw REPL; CTRL-B to exit\\r\\n>"), code ends with
Ctrl-D and is answered "OK", its output, \\x04, its error output, \\x04, then ">"; Ctrl-D on an
empty buffer soft-resets; Ctrl-C interrupts a running program; `\\x05A\\x01` asks for raw-paste,
answered "R\\x01" plus a 16-bit window size and flow-controlled with \\x01 per window.
"""

from __future__ import annotations

import errno
import os
import queue
import signal
import struct
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from hostemu import context

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
# A UART receive buffer bigger than the ESP ports' 256 bytes: one window holds one of mpremote's 256-byte
# file chunks (about 1 KB as a bytes literal), so copies are not paced by flow control.
PASTE_WINDOW = 2048


class Uart:
    """Bytes in from stdin (Ctrl-C interrupts a running script at once), bytes out to stdout."""

    def __init__(self) -> None:
        self._incoming: queue.Queue[bytes] = queue.Queue()
        self._pending = b""
        self.script_running = False
        threading.Thread(target=self._receive, name="hostemu-uart", daemon=True).start()

    def _receive(self) -> None:
        while True:
            try:
                chunk = os.read(0, 512)
            except OSError:
                chunk = b""
            if not chunk:
                self._incoming.put(b"")
                return
            if self.script_running and CTRL_C in chunk:
                # What came before the Ctrl-C was meant for the interrupted program.
                chunk = chunk[chunk.rindex(CTRL_C) + 1:]
                os.kill(os.getpid(), signal.SIGINT)
            if chunk:
                self._incoming.put(chunk)

    def read_byte(self) -> bytes:
        """One byte; b"" when the other end has gone."""
        while not self._pending:
            chunk = self._incoming.get()
            if not chunk:
                return b""
            self._pending = chunk
        byte, self._pending = self._pending[:1], self._pending[1:]
        return byte

    def write(self, data: bytes) -> None:
        sys.stdout.flush()
        view = memoryview(data)
        while view:
            written = os.write(1, view)
            view = view[written:]


def micropython_traceback(exc: BaseException, fs_root: Path | None = None, newline: str = "\r\n") -> str:
    """An uncaught error as MicroPython prints it: device frames only, named by their board path,
    and OSError by errno name (which is what mpremote parses)."""
    root = str(fs_root) + "/" if fs_root else None
    lines = ["Traceback (most recent call last):"]
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if root and name.startswith(root):
            name = name[len(root):]
        elif name != "<stdin>":
            continue  # the emulation layer's own frames are the board's firmware: not shown
        lines.append(f'  File "{name}", line {frame.lineno}, in {frame.name}')
    if isinstance(exc, OSError) and exc.errno in errno.errorcode:
        lines.append(f"OSError: [Errno {exc.errno}] {errno.errorcode[exc.errno]}")
    elif isinstance(exc, OSError) and exc.args and isinstance(exc.args[0], int):
        lines.append(f"OSError: {exc.args[0]}")
    else:
        message = str(exc)
        lines.append(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)
    return newline.join(lines) + newline


class Repl:
    def __init__(self, uart: Uart, board: context.BoardContext) -> None:
        self.uart = uart
        self.board = board
        # One namespace for the board's life, as on the board: mpremote defines `f` and `w` in one
        # exec and calls them in the next.
        self.globals: dict[str, Any] = {"__name__": "__main__", "__file__": str(board.fs_root) + "/<stdin>"}

    def banner(self) -> bytes:
        profile = self.board.profile
        return (f"MicroPython v1.27.0 on hostemu; {profile.description} with {profile.chip.upper()}\r\n"
                'Type "help()" for more information.\r\n').encode()

    def _execute(self, source: bytes) -> None:
        """Run code from the REPL; its output, \\x04, its error output, \\x04."""
        error = b""
        self.uart.script_running = True
        try:
            code = compile(source, "<stdin>", "exec")
            exec(code, self.globals)
        except SystemExit:
            pass
        except BaseException as exc:
            error = micropython_traceback(exc, self.board.fs_root).encode()
        finally:
            self.uart.script_running = False
        sys.stdout.flush()
        self.uart.write(b"\x04" + error + b"\x04")

    def _soft_reset(self, raw: bool) -> int:
        if raw:
            (self.board.private_dir / "raw_repl").touch()
        self.uart.write(b"MPY: soft reboot\r\n")
        return context.EXIT_SOFT_RESET

    def _raw_paste(self) -> bytes:
        self.uart.write(b"R\x01" + struct.pack("<H", PASTE_WINDOW))
        source = bytearray()
        received = 0
        while True:
            byte = self.uart.read_byte()
            if not byte or byte == CTRL_D:
                break
            source += byte
            received += 1
            if received == PASTE_WINDOW:
                received = 0
                self.uart.write(b"\x01")
        self.uart.write(b"\x04")
        return bytes(source)

    def run(self, raw: bool) -> int:
        """Serve the console until a reset or until the other end goes; return the exit code."""
        if raw:
            self.uart.write(RAW_PROMPT)
        else:
            self.uart.write(self.banner() + b">>> ")
        line = bytearray()
        while True:
            byte = self.uart.read_byte()
            if not byte:
                return context.EXIT_RETURNED
            if byte == CTRL_A:
                raw = True
                line.clear()
                self.uart.write(b"\r\n" + RAW_PROMPT)
            elif byte == CTRL_B:
                raw = False
                line.clear()
                self.uart.write(b"\r\n" + self.banner() + b">>> ")
            elif byte == CTRL_C:
                line.clear()
                self.uart.write(b"\r\n" if raw else b"\r\n>>> ")
            elif byte == CTRL_D:
                if not line:
                    return self._soft_reset(raw)
                if raw:
                    self.uart.write(b"OK")
                    self._execute(bytes(line))
                    line.clear()
                    self.uart.write(b">")
            elif raw and byte == CTRL_E and not line:
                if self.uart.read_byte() + self.uart.read_byte() == b"A\x01":
                    source = self._raw_paste()
                    self._execute(source)
                    self.uart.write(b">")
            elif raw:
                line += byte
            elif byte in (b"\r", b"\n"):
                self.uart.write(b"\r\n")
                if line.strip():
                    self._friendly(bytes(line))
                line.clear()
                self.uart.write(b">>> ")
            else:
                line += byte
                self.uart.write(byte)

    def _friendly(self, source: bytes) -> None:
        """One line typed at the >>> prompt: an expression's value is printed, as at a REPL."""
        self.uart.script_running = True
        try:
            try:
                code = compile(source, "<stdin>", "single")
            except SyntaxError:
                code = compile(source, "<stdin>", "exec")
            exec(code, self.globals)
        except BaseException as exc:
            sys.stdout.flush()
            self.uart.write(micropython_traceback(exc, self.board.fs_root).encode())
        finally:
            self.uart.script_running = False
        sys.stdout.flush()
