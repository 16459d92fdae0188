"""The real mpremote reaches an emulated board's raw REPL through its serial port on TCP."""

import subprocess
import sys
from pathlib import Path

from hostemu.testing import BoardProcess

MAIN = """
import time, machine
print("main up, cause", machine.reset_cause())
while True:
    time.sleep(1)
"""


def mpremote(board: BoardProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("mpremote")), "connect", board.serial_url, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"mpremote {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}\nboard:\n{board.output}")
    return result


def test_mpremote_copies_lists_runs_and_resets(tmp_path):
    local = tmp_path / "payload.bin"
    local.write_bytes(bytes(range(256)) * 40 + b"end")
    with BoardProcess(tmp_path / "dev", main=MAIN, install=False, serial=True) as board:
        board.expect("main up, cause 1")
        mpremote(board, "fs", "mkdir", ":data", "+", "fs", "cp", str(local), ":data/payload.bin")
        assert (tmp_path / "dev" / "data" / "payload.bin").read_bytes() == local.read_bytes()

        listing = mpremote(board, "fs", "ls", ":data").stdout
        assert "10243 payload.bin" in listing

        # the board's own modules answer, and the namespace is MicroPython's
        out = mpremote(board, "exec", "import os, sys; print(sys.platform, sorted(os.listdir('/')))").stdout
        assert "esp32 ['data', 'main.py']" in out

        # a second copy of an identical file is skipped by hash, a changed one is written
        again = mpremote(board, "fs", "cp", str(local), ":data/payload.bin").stdout
        assert "Up to date" in again or "cp " in again
        back = tmp_path / "back.bin"
        mpremote(board, "fs", "cp", ":data/payload.bin", str(back))
        assert back.read_bytes() == local.read_bytes()

        # errors come back as MicroPython's, and mpremote maps them
        missing = mpremote(board, "fs", "cat", ":nope.txt", check=False)
        assert missing.returncode != 0 and "No such file" in (missing.stderr + missing.stdout)

        mpremote(board, "reset")
        board.expect(r"reset \(SOFT_RESET\)")
        board.expect("main up, cause 5")
