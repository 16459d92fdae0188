"""Drive simulated boards from tests: start `hostemu run` as a subprocess, read what the firmware
prints, wait for a line, stop it.

    with BoardProcess(tmp_path / "dev1", board="esp32", main=script_text) as board:
        board.expect(r"connected")
        event = board.expect_json("telemetry-sent")   # a printed JSON line with "event": ...

Device code reports to the test by printing; a line that is a JSON object with an "event" key is
an event (`expect_json`). Reading happens on a background thread so a board that prints a lot
never blocks on a full pipe.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from boardkit import profiles
from hostemu import install as installer


class BoardTimeout(AssertionError):
    pass


class BoardProcess:
    def __init__(
        self,
        fs_root: Path,
        board: str = "esp32",
        *,
        main: str | None = None,
        boot: str | None = None,
        files: dict[str, str | bytes] | None = None,
        install: bool = True,
        networks: dict[str, str] | None = None,
        max_resets: int | None = None,
        env: dict[str, str] | None = None,
        serial: bool = False,
        runtime: str = "cpython",
        compiled: bool = False,
    ) -> None:
        self.fs_root = Path(fs_root).resolve()
        self.profile = profiles.load(board)
        self.fs_root.mkdir(parents=True, exist_ok=True)
        if install:
            installer.install(self.fs_root, self.profile, compiled=compiled)
        for name, text in (("main.py", main), ("boot.py", boot)):
            if text is not None:
                (self.fs_root / name).write_text(text)
        for name, content in (files or {}).items():
            path = self.fs_root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        self.networks = networks
        self.max_resets = max_resets
        self.env = env
        self.serial = serial
        self.runtime = runtime  # "vm" / "unix": a real MicroPython (hostemu run --runtime vm / unix)
        self.serial_port: int | None = None
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._process: subprocess.Popen[str] | None = None
        self._cursor = 0
        self._eof = False

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "BoardProcess":
        command = [sys.executable, "-m", "hostemu", "run", "--board", str(self.profile.source),
                   "--fs", str(self.fs_root), "--no-install"]
        for ssid, password in (self.networks or {}).items():
            command += ["--wifi", f"{ssid}:{password}"]
        if self.max_resets is not None:
            command += ["--max-resets", str(self.max_resets)]
        if self.serial:
            command += ["--serial-port", "0"]
        if self.runtime != "cpython":
            command += ["--runtime", self.runtime]
        environment = dict(os.environ, PYTHONUNBUFFERED="1", **(self.env or {}))
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        if self.serial:
            self.serial_port = int(self.expect(r"serial console on socket://127\.0\.0\.1:(\d+)", 20).group(1))
        return self

    @property
    def serial_url(self) -> str:
        """What `mpremote connect` takes to reach this board's console."""
        if self.serial_port is None:
            raise RuntimeError("start the board with serial=True")
        return f"socket://127.0.0.1:{self.serial_port}"

    def _pump(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def stop(self) -> int | None:
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def wait(self, timeout: float = 30) -> int:
        assert self._process is not None
        code = self._process.wait(timeout)
        self._drain(0.2)
        return code

    def __enter__(self) -> "BoardProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- output ---------------------------------------------------------------------------------
    def _drain(self, timeout: float) -> bool:
        """Move one line from the reader into `lines`; False on timeout or end of output."""
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            return False
        if line is None:
            self._eof = True
            self._queue.put(None)
            return False
        self.lines.append(line)
        return True

    @property
    def output(self) -> str:
        while self._drain(0):
            pass
        return "\n".join(self.lines)

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait for the next printed line (after the last one matched) that matches `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.lines):
                line = self.lines[self._cursor]
                self._cursor += 1
                found = regex.search(line)
                if found:
                    return found
            left = deadline - time.monotonic()
            if left <= 0 or (not self._drain(min(left, 0.5)) and self._eof):
                if self._cursor < len(self.lines):
                    continue
                ended = "" if not self._eof else f" (board exited with {self._process.poll() if self._process else None})"
                raise BoardTimeout(f"no line matching {pattern!r} within {timeout}s{ended}; board said:\n"
                                   + "\n".join(self.lines[-60:]))

    def expect_json(self, event: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        """Wait for a printed JSON line {"event": event, ...} whose fields include `match`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            line = self.expect(r'^\{.*"event"', max(left, 0.01)).string
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == event and all(record.get(k) == v for k, v in match.items()):
                return record

    def events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.output.splitlines():
            if line.startswith("{") and '"event"' in line:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == event:
                    found.append(record)
        return found
