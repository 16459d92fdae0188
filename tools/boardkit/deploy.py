"""Deploy the agent to a board over its serial console with mpremote: compiled library and app,
`umqtt.simple`, the board profile and the board's config; only files whose content changed are
copied, decided by SHA-256 computed on the board in one round trip.

In place: when the board's firmware has a ROMFS partition (profile `romfs_bytes`, MicroPython
1.25+), the compiled code goes into one ROMFS image (`mpremote romfs build`) written with
`mpremote romfs deploy`, and runs from flash without being copied into the heap; only boot.py,
main.py, board.json and the config stay files. Copies of the image's modules left on the board's
filesystem are removed: `""` (the filesystem) comes before `/rom` on sys.path and would shadow
them. A deploy as files to a board whose partition holds an image erases its header, or the old
`/rom/lib` would shadow the new `/lib`.

The same code path serves a real board (`/dev/ttyUSB0`) and an emulated one
(`socket://127.0.0.1:PORT`, see `hostemu run --serial-port`): mpremote opens both through pyserial.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from boardkit import mpy, vendor
from boardkit.gate import mpy_cross_path
from boardkit.profiles import BoardProfile

# Runs on the board: make the folders the files need, then answer the SHA-256 of each target
# path (None when absent) and which stale .py files would shadow a deployed .mpy.
_BOARD_SCRIPT = """
import os, hashlib, binascii, json
def _digest(p):
    try:
        d = hashlib.sha256()
        b = bytearray(512)
        m = memoryview(b)
        with open(p, 'rb') as f:
            while True:
                n = f.readinto(b)
                if not n:
                    break
                d.update(m[:n])
        return binascii.hexlify(d.digest()).decode()
    except OSError:
        return None
def _rom():
    # [partition bytes, digest of its first ROM_LENGTH bytes, holds an image] or None.
    try:
        import vfs
        if vfs.rom_ioctl(1) < 1:
            return None
        dev = vfs.rom_ioctl(2, 0)
        if isinstance(dev, int):
            return None
        m = memoryview(dev)
        d = hashlib.sha256()
        for i in range(0, min(ROM_LENGTH, len(m)), 512):
            d.update(m[i:min(i + 512, ROM_LENGTH)])
        return [len(m), binascii.hexlify(d.digest()).decode(), bytes(m[:3]) == b'\\xd2\\xcd\\x31']
    except (ImportError, AttributeError, OSError):
        return None
def _listing(d):
    try:
        return os.listdir(d)
    except OSError:
        return None
for _d in DIRS:
    try:
        os.mkdir(_d)
    except OSError:
        pass
print('DEPLOY' + json.dumps({'files': [[p, _digest(p)] for p in PATHS + SHADOWS],
                             'rom': _rom(), 'dirs': [[d, _listing(d)] for d in LISTED]}))
"""


class DeployError(RuntimeError):
    pass


@dataclass
class RomImage:
    """The ROMFS image of a deploy in place: the board paths it holds, as /rom holds them."""

    path: Path
    members: list[str]
    size: int


@dataclass
class DeployPlan:
    files: dict[str, Path]  # board path (no leading slash) -> local file
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    stale_dirs: list[str] = field(default_factory=list)  # emptied by removing the stale files
    image: RomImage | None = None
    write_image: bool = False
    erase_image: bool = False  # deployed as files: the partition's old image would shadow them


def mpremote_path() -> str:
    candidate = Path(sys.executable).with_name("mpremote")
    return str(candidate) if candidate.exists() else "mpremote"


def _compile_vendored(profile: BoardProfile, files: dict[str, Path], out_dir: Path, compiled: bool) -> None:
    for board_path, source in vendor.fetch().items():
        if not compiled:
            files["lib/" + board_path] = source
            continue
        target = out_dir / "lib" / (board_path[:-3] + ".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        command = [mpy_cross_path(), f"-march={profile.mpy_arch}", "-s", board_path, "-o", str(target), str(source)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise DeployError(f"mpy-cross failed on {source}: {result.stderr.strip()}")
        files["lib/" + board_path[:-3] + ".mpy"] = target


def build(profile: BoardProfile, out_dir: Path, config_dir: Path | None = None, compiled: bool = True) -> dict[str, Path]:
    """Everything the board gets, as {board path: local file}.

    `compiled=False` deploys sources instead of .mpy (for the CPython runtime of the host
    emulation layer, which cannot load .mpy).
    """
    files: dict[str, Path] = {}
    if compiled:
        for item in mpy.compile_for(profile, out_dir):
            files[item.board_path] = item.output
    else:
        for source, board_path in mpy.board_layout():
            files[board_path] = source
    _compile_vendored(profile, files, out_dir, compiled)
    board_json = out_dir / "board.json"
    board_json.parent.mkdir(parents=True, exist_ok=True)
    board_json.write_text(json.dumps(profile.device_json(), indent=1) + "\n")
    files["board.json"] = board_json
    if config_dir is not None:
        for path in sorted(config_dir.iterdir()):
            if path.is_file():
                files[path.name] = path
    return files


# Stay files on a board deployed in place: what the firmware opens or runs by name.
_NOT_IN_IMAGE = ("boot.py", "main.py", "board.json")


def in_image(board_path: str) -> bool:
    """Whether a deployed file belongs in the ROMFS image: compiled code (config stays a file)."""
    return board_path.endswith(".mpy") and board_path not in _NOT_IN_IMAGE


def build_image(files: dict[str, Path], out_dir: Path, capacity: int) -> tuple[RomImage, dict[str, Path]]:
    """Put the compiled code into one ROMFS image with mpremote's own builder; return the image
    and the files that stay files."""
    stage = out_dir / "romfs-stage"
    shutil.rmtree(stage, ignore_errors=True)
    members = sorted(p for p in files if in_image(p))
    for board_path in members:
        target = stage / board_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[board_path], target)
    image_path = out_dir / "agent.romfs"
    # Options before the command: mpremote reads whatever follows the path as its next command.
    result = subprocess.run([mpremote_path(), "romfs", "--no-mpy", "-o", str(image_path), "build", str(stage)],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not image_path.exists():
        raise DeployError(f"mpremote romfs build failed: {(result.stderr or result.stdout).strip()[-300:]}")
    image = RomImage(image_path, members, image_path.stat().st_size)
    if image.size > capacity:
        raise DeployError(f"the ROMFS image ({image.size} bytes) does not fit the board's {capacity}-byte partition")
    return image, {p: f for p, f in files.items() if p not in members}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_mpremote(port: str, args: list[str], on_line: Callable[[str], None] | None = None, timeout: float = 600) -> str:
    command = [mpremote_path(), "connect", port, *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if on_line:
            on_line(line.rstrip("\n"))
    code = process.wait(timeout)
    output = "".join(lines)
    if code != 0:
        tail = output.strip().splitlines()[-1] if output.strip() else f"exit status {code}"
        raise DeployError(f"mpremote on {port} failed: {tail}")
    return output


def _parents(paths: list[str]) -> list[str]:
    return sorted({"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)})


def plan(port: str, files: dict[str, Path], image: RomImage | None = None) -> DeployPlan:
    """Ask the board what it has; decide what to copy, whether to write the image, and which
    stale copies to remove. `files` are the files to copy (with `image`: those left out of it)."""
    board_paths = sorted(files)
    shadows = [p[:-4] + ".py" for p in board_paths if p.endswith(".mpy")]
    if image is not None:  # any copy of an image module on the filesystem is stale
        shadows += [alt for p in image.members for alt in (p, p[:-4] + ".py")]
    listed = _parents([p for p in shadows if p not in files]) if image is not None else []
    rom_length = image.size if image is not None else 3  # as files: only whether a header is there
    script = (f"DIRS = {_parents(board_paths)!r}\nPATHS = {board_paths!r}\nSHADOWS = {shadows!r}\n"
              f"LISTED = {listed!r}\nROM_LENGTH = {rom_length}\n" + _BOARD_SCRIPT)
    output = _run_mpremote(port, ["exec", script], timeout=120)
    marker = [line for line in output.splitlines() if line.startswith("DEPLOY")]
    if not marker:
        raise DeployError(f"the board did not answer the file survey: {output.strip()[-300:]}")
    survey = json.loads(marker[-1][len("DEPLOY"):])
    remote = dict(survey["files"])
    rom = survey["rom"]
    result = DeployPlan(files, image=image)
    for board_path in board_paths:
        (result.unchanged if remote.get(board_path) == _sha256(files[board_path]) else result.changed).append(board_path)
    result.stale = sorted({p for p in shadows if remote.get(p) is not None})
    if image is not None:
        if rom is None:
            raise DeployError("the board's firmware has no ROMFS partition: flash a firmware with one, "
                              "or deploy as files (boardkit deploy --files)")
        if image.size > rom[0]:
            raise DeployError(f"the ROMFS image ({image.size} bytes) does not fit the board's {rom[0]}-byte partition")
        result.write_image = rom[1] != _sha256(image.path)
        removed = set(result.stale)
        # Deepest first; a folder keeps anything that is not ours.
        for folder, entries in sorted(survey["dirs"], key=lambda item: -item[0].count("/")):
            if entries is not None and all(f"{folder}/{name}" in removed for name in entries):
                result.stale_dirs.append(folder)
                removed.add(folder)
    else:
        result.erase_image = bool(rom and rom[2])
    return result


# Erases the partition's first sector: without its header the firmware mounts nothing at /rom.
# ESP8266 erases with rom_ioctl(3, id, length); ESP32's partition object erases by block.
_ERASE_IMAGE = ("import vfs\ntry:\n vfs.umount('/rom')\nexcept OSError:\n pass\n_d = vfs.rom_ioctl(2, 0)\n"
                "if hasattr(_d, 'ioctl'):\n _d.ioctl(6, 0)\nelse:\n vfs.rom_ioctl(3, 0, 4096)\n")


def apply(port: str, deploy_plan: DeployPlan, reset: bool = True, on_copied: Callable[[str], None] | None = None) -> None:
    """Write the image if it changed, copy what changed, remove stale copies, reset the board."""
    args: list[str] = []
    if deploy_plan.write_image and deploy_plan.image is not None:
        args += ["romfs", "deploy", str(deploy_plan.image.path), "+"]
    if deploy_plan.erase_image:
        args += ["exec", _ERASE_IMAGE, "+"]
    for board_path in deploy_plan.changed:
        args += ["fs", "cp", "-f", str(deploy_plan.files[board_path]), ":" + board_path, "+"]
    for board_path in deploy_plan.stale:
        args += ["fs", "rm", ":" + board_path, "+"]
    for folder in deploy_plan.stale_dirs:
        args += ["fs", "rmdir", ":" + folder, "+"]
    if reset:
        args += ["reset"]
    elif args:
        args.pop()  # the last "+"
    if not args:
        return

    def watch(line: str) -> None:
        if line.startswith("cp ") and on_copied:
            on_copied(line.rsplit(":", 1)[-1])

    _run_mpremote(port, args, watch)


def uses_romfs(profile: BoardProfile, compiled: bool, in_place: bool | None) -> bool:
    """In place unless told otherwise, when the code is compiled and the firmware has a ROMFS
    (sources in a ROMFS would be compiled into the heap at import: no gain)."""
    if in_place and not (compiled and profile.romfs_bytes):
        raise DeployError(f"{profile.name}: deploying in place needs compiled code and a profile with romfs_bytes")
    if in_place is None:
        return compiled and bool(profile.romfs_bytes)
    return in_place


def prepare(profile: BoardProfile, out_dir: Path, config_dir: Path | None = None, *, compiled: bool = True,
            in_place: bool | None = None) -> tuple[dict[str, Path], RomImage | None]:
    """The files to copy and, deploying in place, the image holding the rest."""
    files = build(profile, out_dir, config_dir, compiled)
    if not uses_romfs(profile, compiled, in_place):
        return files, None
    image, files = build_image(files, out_dir, profile.romfs_bytes)
    return files, image


def deploy(profile: BoardProfile, port: str, config_dir: Path | None = None, *, compiled: bool = True, reset: bool = True,
           on_copied: Callable[[str], None] | None = None, work_dir: Path | None = None,
           in_place: bool | None = None) -> DeployPlan:
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = work_dir or Path(tmp)
        files, image = prepare(profile, out_dir, config_dir, compiled=compiled, in_place=in_place)
        deploy_plan = plan(port, files, image)
        apply(port, deploy_plan, reset=reset, on_copied=on_copied)
    return deploy_plan
