"""Compile the device code to `.mpy` with mpy-cross for a board's architecture.

`boot.py` and `main.py` stay source: MicroPython runs those two files by name and does not look
for `.mpy` versions of them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from boardkit.gate import mpy_cross_path
from boardkit.profiles import REPO_ROOT, BoardProfile

KEEP_AS_SOURCE = ("boot.py", "main.py")


@dataclass(frozen=True)
class Compiled:
    source: Path
    output: Path
    board_path: str  # where the file goes on the board, e.g. "lib/iothub/sas.mpy"

    @property
    def size(self) -> int:
        return self.output.stat().st_size


def is_board_file(board_path: str) -> bool:
    """Whether a file of firmware/ or lib/ goes onto the board: Python modules, but not the
    packaging manifests (manifest*.py at the top of lib/ are read by MicroPython's freezer)."""
    name = board_path.rsplit("/", 1)[-1]
    if not name.endswith(".py") or "__pycache__" in board_path:
        return False
    return not (board_path.count("/") <= 1 and name.startswith("manifest"))


def board_layout(repo_root: Path = REPO_ROOT) -> list[tuple[Path, str]]:
    """(source file, path on the board) for everything the board needs."""
    layout = []
    for path in sorted((repo_root / "firmware").rglob("*.py")):
        layout.append((path, path.relative_to(repo_root / "firmware").as_posix()))
    for path in sorted((repo_root / "lib").rglob("*.py")):
        layout.append((path, "lib/" + path.relative_to(repo_root / "lib").as_posix()))
    return [(src, dst) for src, dst in layout if is_board_file(dst)]


def compile_for(profile: BoardProfile, out_dir: Path, repo_root: Path = REPO_ROOT,
                portable: bool = False) -> list[Compiled]:
    """Compile lib/ and firmware/ for the profile's architecture into `out_dir`, laid out as on the board.

    `portable`: bytecode with no architecture recorded, which any port loads (an emulated board
    on this PC: MicroPython refuses an .mpy marked for another CPU)."""
    results = []
    for source, board_path in board_layout(repo_root):
        if board_path in KEEP_AS_SOURCE:
            target = out_dir / board_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            results.append(Compiled(source, target, board_path))
            continue
        board_path = board_path[:-3] + ".mpy"
        target = out_dir / board_path
        target.parent.mkdir(parents=True, exist_ok=True)
        # -s: the name recorded in tracebacks is the board path, not this machine's.
        march = [] if portable else [f"-march={profile.mpy_arch}"]
        command = [mpy_cross_path(), *march, "-s", board_path[:-4] + ".py", "-o", str(target), str(source)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"mpy-cross failed on {source}: {(result.stderr or result.stdout).strip()}")
        results.append(Compiled(source, target, board_path))
    return results
