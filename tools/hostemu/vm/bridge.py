"""MicroPythonVM: runs device code in MicroPython's WebAssembly port and answers its bridge calls.

One run is one Node process (`runner.mjs`): a fresh interpreter, like a board after reset. The
board's folder is the VM's "/" (writes go straight to the host folder, so they survive the next
run); printed output, heap reports and bridge calls come back over a pipe as JSON lines, and the
parent answers each call synchronously from its registry of services ("socket", "clock", and
whatever `register_service()` adds, e.g. the Board model's "machine" later).

    vm = MicroPythonVM(board_dir, heap_bytes=64 * 1024)
    result = vm.run("main.py")            # or vm.boot(), or vm.run(code="print(1)")
    result.status, result.traceback, result.output, result.heap_at("baseline")
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostemu.peripherals.clock import Clock, ClockService, RealClock
from hostemu.peripherals.host import ServiceHost
from hostemu.peripherals.protocol import ProtocolError, VMStop, parse_frame
from hostemu.peripherals.results import HeapReport, RuntimeFailure, RuntimeTimeout
from hostemu.peripherals.results import RunResult as _RunResult

from hostemu.peripherals.netsvc import NetService

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "runner.mjs"
MPY_MODULES = HERE / "mpy_modules"  # the VM's own: its bridge (_hostemu) and heap reports
NET_MODULES = HERE.parent / "peripherals" / "netmodules"  # socket, ssl, select, time over NetService
BRIDGE_COMMON = HERE.parent / "peripherals" / "bridge"  # what the VM's and the unix port's _hostemu share
DEFAULT_MICROPYTHON = (HERE.parent.parent / "node" / "node_modules" / "@micropython"
                       / "micropython-webassembly-pyscript" / "micropython.mjs")
# gc.mem_free() of this port includes the largest heap block it may still add (split heap).
SPLIT_HEAP_MAX = 128 * 1024 * 1024
SYS_PATH = ["", ".frozen", "/lib"]  # sys.path of the ESP ports


@dataclass(frozen=True)
class HeapSample(HeapReport):
    @property
    def heap_total(self) -> int:
        """Size of the heap in use; above `heap_bytes` means the VM had to grow its heap."""
        return self.alloc + self.free - SPLIT_HEAP_MAX


class RunResult(_RunResult[HeapSample]):
    @property
    def peak_heap_total(self) -> int:
        return max((s.heap_total for s in self.heap), default=0)


class VMError(RuntimeFailure):
    """The VM itself failed (Node missing, runner crashed, protocol broken): not device code."""


class VMTimeout(VMError, RuntimeTimeout):
    pass


class MicroPythonVM:
    """A board running in MicroPython's WebAssembly port.

    board_fs: the board's file system folder (created if missing), seen as "/" by device code.
    heap_bytes: initial GC heap. The port grows it on demand, so running out raises no
        MemoryError; `HeapSample.heap_total` above `heap_bytes` shows that it had to grow.
    clock: `RealClock()` (default) or `ManualClock()` for tests that pass the clock in.
    hosts: names device code resolves -> IPv4 addresses (anything else uses the host resolver).
    env: JSON values handed to device code as `_hostemu.ENV`.
    on_output: called with each piece of printed output as it arrives.
    link_up: asked before socket connect/read/write; False fails them with ECONNABORTED.
    module_dirs: more folders of VM-side modules (e.g. machine.py), imported before the baseline;
        a module there replaces one of the same name in mpy_modules/ or peripherals/netmodules/.
    timeout: default wall-clock limit of a run, in seconds.
    """

    def __init__(self, board_fs: str | os.PathLike[str], *, heap_bytes: int = 64 * 1024,
                 pystack_words: int = 2048, clock: Clock | None = None,
                 hosts: Mapping[str, str] | None = None, env: Mapping[str, Any] | None = None,
                 on_output: Callable[[str], None] | None = None,
                 on_heap: Callable[[HeapSample], None] | None = None,
                 module_dirs: Iterable[str | os.PathLike[str]] = (), node: str = "node",
                 link_up: Callable[[], bool] | None = None,
                 timeout: float = 60.0, micropython_mjs: str | os.PathLike[str] | None = None) -> None:
        if heap_bytes < 4096:
            raise ValueError("heap_bytes must be at least 4096")
        self.board_fs = Path(board_fs).resolve()
        self.board_fs.mkdir(parents=True, exist_ok=True)
        self.heap_bytes = heap_bytes
        self.pystack_words = pystack_words
        self.clock: Clock = clock if clock is not None else RealClock()
        self.env = dict(env or {})
        self.on_output = on_output
        self.on_heap = on_heap
        self.module_dirs = [BRIDGE_COMMON, MPY_MODULES, NET_MODULES, *(Path(d).resolve() for d in module_dirs)]
        self.node = shutil.which(node) or node
        self.timeout = timeout
        self.micropython_mjs = Path(micropython_mjs) if micropython_mjs else DEFAULT_MICROPYTHON
        self.host = ServiceHost()
        self.services = self.host.services
        self.call_hooks = self.host.call_hooks  # before every bridge call; may raise VMStop
        self.net = NetService(hosts=hosts, cancelled=self.cancelled, link_up=link_up)
        self.register_service("socket", self.net)
        self.register_service("clock", ClockService(self.clock, self.cancelled))
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._running = threading.Lock()

    # -- public API -------------------------------------------------------------------------

    def register_service(self, name: str, service: object) -> None:
        """Answer `_hostemu.call(name, op, ...)` from the VM with `service.op_<op>(...)`."""
        self.host.register_service(name, service)

    def request_heap_probe(self, label: str) -> None:
        """Ask for gc.collect() + a heap report at the VM's next bridge call (any thread)."""
        self.host.request_heap_probe(label)

    def stop(self) -> None:
        """End the current run (any thread); run() then raises VMTimeout."""
        self._stop.set()

    def cancelled(self) -> bool:
        """True once the run must end: blocking services give up when they see it."""
        return self._stop.is_set() or time.monotonic() > self._deadline

    def boot(self, *, timeout: float | None = None) -> RunResult:
        """Run boot.py then main.py, those that exist, as a board does after reset."""
        scripts = [name for name in ("boot.py", "main.py") if (self.board_fs / name).is_file()]
        return self.run(*scripts, timeout=timeout)

    def run(self, *scripts: str | os.PathLike[str], code: str | None = None,
            timeout: float | None = None) -> RunResult:
        """Run the scripts (board paths such as "main.py"), then `code`, in one fresh VM.

        They share one global scope, as boot.py and main.py do; the first uncaught exception or
        sys.exit() ends the run. Returns when the VM has exited; raises VMTimeout after
        `timeout` seconds (the VM is killed) and VMError if the VM itself broke.
        """
        items: list[dict[str, str]] = [{"path": self._vm_path(s)} for s in scripts]
        if code is not None:
            items.append({"code": code})
        if not items:
            raise ValueError("nothing to run: give scripts or code")
        if not self._running.acquire(blocking=False):
            raise RuntimeError("this VM is already running")
        try:
            self._stop.clear()
            self._deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            return self._run(items)
        finally:
            self._deadline = float("inf")
            self.net.close_all()
            self._running.release()

    # -- internals ----------------------------------------------------------------------------

    def _vm_path(self, script: str | os.PathLike[str]) -> str:
        path = Path(script)
        if path.is_absolute():
            try:
                return "/" + path.resolve().relative_to(self.board_fs).as_posix()
            except ValueError:
                if str(script).startswith("/") and not path.exists():
                    return str(script)  # already a board path such as "/main.py"
                raise ValueError(f"{script} is not inside the board folder {self.board_fs}") from None
        return path.as_posix()

    def _config(self, items: list[dict[str, str]]) -> dict[str, Any]:
        names: dict[str, None] = {}
        for folder in self.module_dirs:
            for entry in sorted(folder.iterdir()):
                if entry.suffix in (".py", ".mpy") and entry.stem != "_hostemu":
                    names[entry.stem] = None
        return {
            "heapsize": self.heap_bytes,
            "pystack": self.pystack_words,
            "board_fs": str(self.board_fs),
            "module_dirs": [str(d) for d in self.module_dirs],
            "micropython": str(self.micropython_mjs),
            "run": {"env": self.env, "preimport": list(names), "sys_path": SYS_PATH, "scripts": items},
        }

    def _run(self, items: list[dict[str, str]]) -> RunResult:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        node_log = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen(
                [self.node, str(RUNNER), str(req_w), str(resp_r)], pass_fds=(req_w, resp_r),
                stdin=subprocess.DEVNULL, stdout=node_log, stderr=node_log)
        except OSError as exc:
            for fd in (req_r, req_w, resp_r, resp_w):
                os.close(fd)
            node_log.close()
            raise VMError(f"cannot start Node ({self.node}): {exc}") from exc
        os.close(req_w)
        os.close(resp_r)
        session = _Session(self, proc, req_r, resp_w, node_log)
        try:
            session.send((json.dumps(self._config(items)) + "\n").encode())
            return session.serve()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            os.close(req_r)
            os.close(resp_w)
            node_log.close()


class _Session:
    """One Node process: reads its frames, answers its calls, collects output and heap samples."""

    def __init__(self, vm: MicroPythonVM, proc: subprocess.Popen[bytes], req_r: int, resp_w: int,
                 node_log: Any) -> None:
        self.vm, self.proc, self.req_r, self.resp_w, self.node_log = vm, proc, req_r, resp_w, node_log
        self.output: list[str] = []
        self.heap: list[HeapSample] = []
        self.buffer = b""

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.resp_w, view):]
            except BrokenPipeError:
                return  # the VM died; serve() reports why

    def _node_log(self) -> str:
        self.node_log.seek(0)
        return self.node_log.read().decode("utf-8", "replace")[-4000:]

    def _read_line(self) -> bytes | None:
        while True:
            nl = self.buffer.find(b"\n")
            if nl >= 0:
                line, self.buffer = self.buffer[:nl], self.buffer[nl + 1:]
                return line
            if self.vm.cancelled():
                self.proc.kill()
                reason = "stopped" if self.vm._stop.is_set() else "timed out"
                raise VMTimeout(f"MicroPython VM run {reason}", "".join(self.output))
            ready, _, _ = select.select([self.req_r], [], [], 0.1)
            if not ready:
                continue
            chunk = os.read(self.req_r, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk

    def serve(self) -> RunResult:
        while True:
            line = self._read_line()
            if line is None:
                self.proc.wait()
                raise VMError(f"MicroPython VM ended without a result (exit code {self.proc.returncode}):\n"
                              f"{self._node_log()}")
            try:
                frame = parse_frame(line)
            except ProtocolError as exc:
                raise VMError(f"MicroPython VM broke the bridge protocol: {exc}") from exc
            kind = frame["t"]
            if kind == "out":
                text = str(frame.get("d", ""))
                self.output.append(text)
                if self.vm.on_output is not None:
                    self.vm.on_output(text)
            elif kind == "heap":
                sample = HeapSample(str(frame["l"]), int(frame["a"]), int(frame["f"]), bool(frame["c"]))
                self.heap.append(sample)
                if self.vm.on_heap is not None:
                    self.vm.on_heap(sample)
            elif kind == "call":
                try:
                    self.send(self.vm.host.dispatch(frame))
                except VMStop as stop:
                    self.proc.kill()
                    return RunResult(stop.status, None, "".join(self.output), self.heap, stop.reason)
            elif kind == "exit":
                if frame.get("fatal"):
                    raise VMError(f"MicroPython VM failed: {frame['fatal']}\n{self._node_log()}")
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                return RunResult(int(frame["s"]), frame.get("tb"), "".join(self.output), self.heap)
            else:
                raise VMError(f"MicroPython VM sent an unknown frame {kind!r}")


__all__ = ["HeapSample", "MicroPythonVM", "RunResult", "VMError", "VMTimeout"]
