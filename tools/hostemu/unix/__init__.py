"""The unix-port runtime of the host emulation layer: device code on MicroPython's real unix port
(real socket, select, ssl on mbedTLS, time), with only the board's peripherals bridged to the
Python parent. See runtime.py."""

from .runtime import HeapReport, MicroPythonUnix, UnixError, UnixRunResult, UnixTimeout, micropython_binary

__all__ = ["HeapReport", "MicroPythonUnix", "UnixError", "UnixRunResult", "UnixTimeout", "micropython_binary"]
