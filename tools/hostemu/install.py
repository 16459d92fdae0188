"""Put firmware on a simulated board: what flashing MicroPython and deploying the app does to a
real board's filesystem, for a board folder."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from boardkit.mpy import board_layout, compile_for
from boardkit.profiles import REPO_ROOT, BoardProfile


def install(fs_root: Path, profile: BoardProfile, *, repo_root: Path = REPO_ROOT, overwrite: bool = False,
            compiled: bool = False) -> list[Path]:
    """Copy the firmware to the board's root, the library to /lib, and the profile to /board.json,
    as `boardkit deploy --source` lays them out (`compiled`: as `boardkit deploy` does, .mpy
    from mpy-cross, as portable bytecode, with boot.py and main.py as source).

    Files already on the board are kept unless `overwrite` is given, so what the firmware wrote or
    updated itself (config, a firmware update) survives; returns what was written.
    """
    fs_root.mkdir(parents=True, exist_ok=True)
    if compiled:
        with tempfile.TemporaryDirectory() as tmp:
            items = [(c.output, c.board_path) for c in compile_for(profile, Path(tmp), repo_root, portable=True)]
            return _copy(fs_root, profile, items, overwrite)
    return _copy(fs_root, profile, board_layout(repo_root), overwrite)


def _copy(fs_root: Path, profile: BoardProfile, items: list[tuple[Path, str]], overwrite: bool) -> list[Path]:
    copied = []
    for source, board_path in items:
        destination = fs_root / board_path
        if destination.exists() and (not overwrite or destination.read_bytes() == source.read_bytes()):
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        copied.append(destination)
    board_json = fs_root / "board.json"
    if overwrite or not board_json.exists():
        board_json.write_text(json.dumps(profile.device_json(), indent=1) + "\n")
        copied.append(board_json)
    return copied
