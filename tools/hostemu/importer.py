"""What device code may import, and what it gets.

Code loaded from the board's folder (boot.py, main.py, /lib) is "device code". Its imports are
answered as a MicroPython board answers them:
- the board's peripherals (`machine`, `network`, `esp`, `esp32`, `ntptime`) and its network and
  clock (`socket`, `ssl`, `select`, `time`) are the device-side modules every runtime runs
  (`hostemu/peripherals/modules`, `hostemu/peripherals/netmodules`), here over `hostemu.inproc`,
  which answers their calls with the same host services the VM's and the unix port's bridges do;
- what is CPython-specific about the interpreter itself (`gc`, `os`, `sys`, `micropython`) comes
  from `hostemu.mp`;
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

_PERIPHERALS = Path(__file__).resolve().parent / "peripherals"
DEVICE_MODULE_DIRS = (_PERIPHERALS / "modules", _PERIPHERALS / "netmodules")
# Device-side modules shared with the other runtimes, loaded from these files.
BRIDGED = {name: DEVICE_MODULE_DIRS[0] / f"{name}.py" for name in ("machine", "network", "esp", "esp32", "ntptime")}
BRIDGED.update({name: DEVICE_MODULE_DIRS[1] / f"{name}.py" for name in ("socket", "ssl", "select", "time")})
# What the interpreter itself gives device code on this runtime (hostemu.mp).
INTERPRETER = ("micropython", "gc", "os", "sys", "vfs")
SHIMMED = (*BRIDGED, *INTERPRETER)
# What the shared modules import of the runtime under them: the bridge, and the interpreter's own
# time and select (device code gets the board's under those names).
_RUNTIME_IMPORTS = {"_hostemu": "hostemu.inproc", "utime": "hostemu.mp.utime", "uselect": "hostemu.mp.uselect"}
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
        # Only the device-side folders: the host services beside them are host code.
        self._runtime_dirs = tuple(str(folder) + "/" for folder in DEVICE_MODULE_DIRS)

    def is_device_code(self, globals_: dict[str, Any] | None) -> bool:
        """Code from the board's folder, or one of the shared device-side modules."""
        if not globals_:
            return False
        filename = globals_.get("__file__")
        return isinstance(filename, str) and (filename.startswith(self.fs_root) or self._is_runtime(filename))

    def _is_runtime(self, filename: str) -> bool:
        return filename.startswith(self._runtime_dirs)

    def shim(self, name: str) -> ModuleType:
        module = self._shims.get(name)
        if module is None:
            if name in BRIDGED:
                # Not in sys.modules: host code in this process keeps CPython's socket, ssl, time.
                spec = importlib.util.spec_from_file_location(f"hostemu.device.{name}", BRIDGED[name])
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                self._shims[name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del self._shims[name]
                    raise
            else:
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
        if name in _RUNTIME_IMPORTS and self._is_runtime(globals_.get("__file__", "")):
            return importlib.import_module(_RUNTIME_IMPORTS[name])
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
        # Device code and the shared modules (ssl reads a cafile or a key by the board's path).
        if isinstance(file, str) and file.startswith("/") and self.is_device_code(sys._getframe(1).f_globals):
            file = self.fs_root + file
        return self._real_open(file, *args, **kwargs)


def install(fs_root: Path) -> DeviceImporter:
    importer = DeviceImporter(fs_root)
    builtins.__import__ = importer
    builtins.open = importer.open
    return importer
