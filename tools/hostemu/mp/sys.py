"""MicroPython's `sys` for a board: the host's streams and module table, a board platform name,
and `print_exception`."""

import sys as _host_sys
import traceback as _traceback

from hostemu import context as _context

argv = []
path = _host_sys.path
modules = _host_sys.modules
stdin = _host_sys.stdin
stdout = _host_sys.stdout
stderr = _host_sys.stderr
maxsize = _host_sys.maxsize
byteorder = "little"
version = "3.4.0; MicroPython v1.27.0 (hostemu)"
version_info = (3, 4, 0)
implementation = _host_sys.implementation
platform = _context.current().profile.chip if _context.current().profile.chip == "esp8266" else "esp32"
exc_info = _host_sys.exc_info


def exit(code=0):
    raise SystemExit(code)


def print_exception(exc, file=None):
    _traceback.print_exception(exc, file=file or _host_sys.stdout)


def atexit(func):
    return None
