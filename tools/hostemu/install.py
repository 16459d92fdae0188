"""Put firmware on a simulated board: what flashing MicroPython and deploying the app does to a
real board's filesystem, for a board folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from boardkit.profiles import REPO_ROOT, BoardProfile

FIRMWARE_DIR = REPO_ROOT / "firmware"
LIB_DIR = REPO_ROOT / "lib"


def _copy_tree(source: Path, target: Path, overwrite: bool) -> list[Path]:
    copied = []
    for path in sorted(source.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        destination = target / path.relative_to(source)
        if destination.exists() and (not overwrite or destination.read_bytes() == path.read_bytes()):
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        copied.append(destination)
    return copied


def install(fs_root: Path, profile: BoardProfile, *, firmware_dir: Path = FIRMWARE_DIR, lib_dir: Path = LIB_DIR,
            overwrite: bool = False) -> list[Path]:
    """Copy the firmware to the board's root, the library to /lib, and the profile to /board.json.

    Files already on the board are kept unless `overwrite` is given, so what the firmware wrote or
    updated itself (config, a firmware update) survives; returns what was written.
    """
    fs_root.mkdir(parents=True, exist_ok=True)
    copied = _copy_tree(firmware_dir, fs_root, overwrite) if firmware_dir.is_dir() else []
    copied += _copy_tree(lib_dir, fs_root / "lib", overwrite) if lib_dir.is_dir() else []
    board_json = fs_root / "board.json"
    if overwrite or not board_json.exists():
        board_json.write_text(json.dumps(profile.device_json(), indent=1) + "\n")
        copied.append(board_json)
    return copied
