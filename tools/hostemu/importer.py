"""What device code may import, and what it gets.

Code loaded from the board's folder (boot.py, main.py, /lib) is "device code". Its imports are
answered as a MicroPython board answers them:
- MicroPython-only modules and those whose API differs (`machine`, `network`, `socket`, `ssl`,
  `time`, `os`, `sys`, ...) come from `hostemu.mp`;
- modules MicroPython has with CPython's API (json, hashlib, binascii, struct, ...) are CPython's;
- the board's own files import as usual;
- anything else (`hmac`, `urllib`, `typing`, `logging`, `threading`, ...) raises ImportError,
  as on the board, so a guarded `try: import typing except ImportError:` takes its board path here.
Host code in the same process (the emulation layer, CPython's stdlib) keeps CPython's modules:
only the importer's identity decides, so nothing of CPython is replaced in `sys.modules`.
Absolute paths given to `open()` by device code are board paths (`/config.json`).
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SHIMMED = ("machine", "network", "esp", "esp32", "ntptime", "micropython", "socket", "ssl", "select", "time", "gc", "os", "sys")
HOST_MODULES_AS_IS = ("array", "binascii", "builtins", "cmath", "collections", "errno", "hashlib", "heapq", "io", "json",
                      "math", "random", "re", "struct", "asyncio")
# MicroPython still answers to the u-prefixed names of its built-in modules, but not `ussl`:
# since 1.23 `ssl` is a Python module over the built-in `tls`, and only built-ins get the alias.
ALIASES = {"u" + name: name for name in ("socket", "select", "time", "os", "sys", "binascii", "hashlib", "json",
                                          "struct", "random", "re", "collections", "errno", "heapq", "io", "array")}
ALIASES["uasyncio"] = "asyncio"


class DeviceImporter:
    def __init__(self, fs_root: Path) -> None:
        self.fs_root = str(fs_root.resolve())
        self._real_import = builtins.__import__
        self._real_open = builtins.open
        self._shims: dict[str, ModuleType] = {}

    def is_device_code(self, globals_: dict[str, Any] | None) -> bool:
        if not globals_:
            return False
        filename = globals_.get("__file__")
        return isinstance(filename, str) and filename.startswith(self.fs_root)

    def shim(self, name: str) -> ModuleType:
        module = self._shims.get(name)
        if module is None:
            module = importlib.import_module(f"hostemu.mp.{name}")
            self._shims[name] = module
        return module

    def _refuse(self, name: str) -> ImportError:
        return ImportError(f"no module named '{name}'")

    def __call__(self, name: str, globals_=None, locals_=None, fromlist=(), level: int = 0):
        if globals_ is None:  # a direct __import__(name) call: judge by its caller
            globals_ = sys._getframe(1).f_globals
        if level or not self.is_device_code(globals_):
            return self._real_import(name, globals_, locals_, fromlist, level)
        top, _, rest = name.partition(".")
        top = ALIASES.get(top, top)
        if top in SHIMMED:
            if rest:
                raise self._refuse(name)
            return self.shim(top)
        if top in HOST_MODULES_AS_IS:
            return self._real_import(top + ("." + rest if rest else ""), globals_, locals_, fromlist, level)
        module = sys.modules.get(top)
        if module is None:
            spec = importlib.util.find_spec(top)
            if spec is None or not self._on_board(spec.origin, spec.submodule_search_locations):
                raise self._refuse(name)
        elif not self._on_board(getattr(module, "__file__", None), getattr(module, "__path__", None)):
            raise self._refuse(name)
        return self._real_import(name, globals_, locals_, fromlist, level)

    def _on_board(self, origin: str | None, locations: Any) -> bool:
        if origin and origin.startswith(self.fs_root):
            return True
        return any(str(loc).startswith(self.fs_root) for loc in (locations or ()))

    def open(self, file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str) and file.startswith("/") and self.is_device_code(sys._getframe(1).f_globals):
            file = self.fs_root + file
        return self._real_open(file, *args, **kwargs)


def install(fs_root: Path) -> DeviceImporter:
    importer = DeviceImporter(fs_root)
    builtins.__import__ = importer
    builtins.open = importer.open
    return importer
