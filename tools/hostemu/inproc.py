"""`_hostemu` for device code on the CPython runtime: the calls the WebAssembly VM and the unix port
make over their bridges (`hostemu/peripherals/protocol.py`), answered in this process by the same
services (`peripherals/host.ServiceHost`). So the board's peripherals (`peripherals/modules`) and
its network, TLS and clock (`peripherals/netmodules`) are one set of device-side modules that all
runtimes run, over one board model and one network service: the runtimes cannot drift apart.

Device-side modules pass buffers by "address" (`addressof(buf)`, then `addr + offset`): here an
address is the buffer's memoryview and an offset, so a call reads from or writes into the
device's own buffer, as the VM's does through WebAssembly memory.
"""

from __future__ import annotations

import builtins
import os
import sys
from typing import Any

from hostemu.peripherals.host import ServiceHost
from hostemu.peripherals.protocol import DeviceError, Reply, VMStop

ENV: dict[str, Any] = {}  # the VM's _hostemu.ENV; nothing is passed to device code here
_host: ServiceHost | None = None


def attach(host: ServiceHost) -> None:
    """Answer device code's calls with `host` (the board process does this before boot.py)."""
    global _host
    _host = host


class Address:
    """A device buffer and an offset into it: what `addressof()` gives, with `+ n`."""

    __slots__ = ("view", "offset")

    def __init__(self, view: memoryview, offset: int = 0) -> None:
        self.view = view
        self.offset = offset

    def __add__(self, delta: int) -> "Address":
        return Address(self.view, self.offset + delta)


def addressof(buf: Any) -> Address:
    view = memoryview(buf)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return Address(view)


def _args(items: tuple[Any, ...]) -> list[Any]:
    args = list(items)
    while args and args[-1] is None:
        args.pop()
    return args


def _run(service: str, op: str, args: list[Any], data: bytes | None = None, size: int | None = None) -> Reply:
    if _host is None:
        raise RuntimeError("hostemu: no board is attached to this process")
    try:
        return _host.call(service, op, args, data=data, size=size)
    except DeviceError as exc:
        kind = getattr(builtins, exc.exc_type, None)
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            kind = RuntimeError
        raise kind(*exc.exc_args) from None
    except VMStop as stop:
        end(stop.status)
        raise  # not reached


def end(status: int) -> None:
    """A reset: nothing after it runs, as on the chip (os._exit skips every cleanup)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def call(service: str, op: str, a: Any = None, b: Any = None, c: Any = None, d: Any = None) -> Any:
    return _run(service, op, _args((a, b, c, d))).result


def call_out(service: str, op: str, addr: Address, n: int, a: Any = None, b: Any = None) -> Any:
    return _run(service, op, _args((a, b)), data=bytes(addr.view[addr.offset:addr.offset + n])).result


def call_in(service: str, op: str, addr: Address, n: int, a: Any = None, b: Any = None) -> Any:
    reply = _run(service, op, _args((a, b)), size=n)
    if reply.data:
        addr.view[addr.offset:addr.offset + len(reply.data)] = reply.data
    return reply.result


def probe(label: str) -> None:
    """Heap reports are MicroPython's (the VM, the unix port); gc.mem_alloc() is the CPython figure."""


sample = probe
