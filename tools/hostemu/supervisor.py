"""The power supply and reset line of a simulated board: starts a board process, and when it
resets, starts the next one on the same folder with the reset cause the firmware will read."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from boardkit.profiles import BoardProfile
from hostemu import context
from hostemu.serial_bridge import SerialBridge

DEFAULT_NETWORKS = {"hostemu": "hostemu"}
_BOARD_PROCESS = {"cpython": "hostemu.board_process", "vm": "hostemu.vm.board_process",
                  "unix": "hostemu.unix.board_process"}


@dataclass
class BoardRun:
    profile: BoardProfile
    fs_root: Path
    networks: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_NETWORKS))
    max_resets: int | None = None
    heap_trace: bool = True
    serial: SerialBridge | None = None
    runtime: str = "cpython"  # "vm": MicroPython's WebAssembly VM (hostemu.vm); "unix": its unix port (hostemu.unix)
    resets: int = 0
    _stopping: int = 0
    _child: subprocess.Popen[bytes] | None = None

    def _say(self, message: str) -> None:
        print(f"hostemu: {message}", file=sys.stderr, flush=True)

    def _power_on(self) -> None:
        # A power cycle loses the RTC and RTC memory; the filesystem (flash) stays.
        private = self.fs_root / context.PRIVATE_DIR
        for name in ("rtc.json", "rtc_memory.json", "deepsleep"):
            (private / name).unlink(missing_ok=True)

    def _start(self, cause: str) -> subprocess.Popen[bytes]:
        module = _BOARD_PROCESS[self.runtime]
        command = [
            sys.executable, "-m", module,
            "--board", str(self.profile.source),
            "--fs", str(self.fs_root),
            "--reset-cause", cause,
            "--networks", json.dumps(self.networks),
        ]
        if self.runtime != "cpython":
            if self.serial is not None:
                raise ValueError(f"the serial console is not available with the {self.runtime} runtime")
            return subprocess.Popen(command)
        if not self.heap_trace:
            command.append("--no-heap-trace")
        if self.serial is None:
            return subprocess.Popen(command)
        child = subprocess.Popen(command + ["--console"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert child.stdin is not None and child.stdout is not None
        self._relay = self.serial.attach(child.stdin, child.stdout)
        return child

    def run(self) -> int:
        """Run until the firmware stops for good; return its exit status (0: main.py returned)."""
        self.fs_root.mkdir(parents=True, exist_ok=True)
        (self.fs_root / context.PRIVATE_DIR).mkdir(exist_ok=True)
        self._power_on()
        cause = "PWRON_RESET"
        previous_handler = signal.signal(signal.SIGTERM, self._terminate)
        try:
            while True:
                self._child = self._start(cause)
                code = self._child.wait()
                if self._stopping:
                    return 128 + self._stopping
                if self.serial is not None:
                    self.serial.detach()
                    self._relay.join(5)  # all the board printed reaches the port before the next boot
                if code == context.EXIT_RESET:
                    cause = "SOFT_RESET"
                elif code == context.EXIT_SOFT_RESET:
                    pass  # the hardware reset cause is unchanged by a VM restart
                elif code == context.EXIT_WATCHDOG:
                    cause = "WDT_RESET"
                elif code == context.EXIT_DEEPSLEEP:
                    marker = self.fs_root / context.PRIVATE_DIR / "deepsleep"
                    sleep_ms = int(marker.read_text() or 0) if marker.exists() else 0
                    self._say(f"deep sleep for {sleep_ms} ms")
                    time.sleep(sleep_ms / 1000)
                    cause = "DEEPSLEEP_RESET"
                else:
                    return code
                self.resets += 1
                self._say("soft reboot" if code == context.EXIT_SOFT_RESET else f"reset ({cause})")
                if self.max_resets is not None and self.resets > self.max_resets:
                    self._say(f"stopping after {self.max_resets} resets")
                    return 0
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
            self._stop_child()

    def _stop_child(self) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _terminate(self, signum: int, frame: object) -> None:
        # Only pass the signal on: the main thread is inside child.wait(), which holds Popen's wait
        # lock, so waiting here again would deadlock. The loop ends when that wait returns.
        self._stopping = signum
        child = self._child
        if child is not None and child.returncode is None:
            try:
                child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
