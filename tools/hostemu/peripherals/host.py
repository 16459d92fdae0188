"""The host end of the bridge: answers device-side calls with the registered services.

Both real-MicroPython runtimes (the WebAssembly VM and the unix port) send the same call frames
(`protocol.call_from_frame`) and get the same replies, so a service written once (the board's
peripherals in `services.py`, the VM's sockets) behaves the same under both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .protocol import DeviceError, Reply, VMStop, call_from_frame, encode_reply

log = logging.getLogger(__name__)


class ServiceHost:
    """Services by name; `dispatch(frame)` runs `services[name].op_<op>(...)` and encodes the reply."""

    def __init__(self) -> None:
        self.services: dict[str, object] = {}
        # Called before every call; may raise VMStop (a watchdog that ran out).
        self.call_hooks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._probes: list[str] = []
        self._exhaust_at: set[str] = set()

    def register_service(self, name: str, service: object) -> None:
        """Answer `_hostemu.call(name, op, ...)` from device code with `service.op_<op>(...)`."""
        self.services[name] = service

    def request_heap_probe(self, label: str) -> None:
        """Ask for gc.collect() + a heap report at the device's next bridge call (any thread)."""
        with self._lock:
            self._probes.append(label)

    def request_heap_exhaustion(self, service: str, op: str) -> None:
        """Leave the device's heap without a free block when its next `service.op` call returns:
        a real MemoryError at the device code's next allocation, as a fragmented board meets it
        (the garbage that fills it is collected by the next gc.collect())."""
        with self._lock:
            self._exhaust_at.add(service + "." + op)

    def _take_exhaustion(self, service: str, op: str) -> bool:
        with self._lock:
            name = service + "." + op
            if name in self._exhaust_at:
                self._exhaust_at.discard(name)
                return True
            return False

    def _take_probe(self) -> str | None:
        with self._lock:
            return self._probes.pop(0) if self._probes else None

    def call(self, service: str, op: str, args: list[Any], *, data: bytes | None = None,
             size: int | None = None, hooks: bool = True) -> Reply:
        """Run one call; raises DeviceError (to raise in device code) or VMStop (the run ends)."""
        if hooks:
            for hook in self.call_hooks:
                hook()
        method = getattr(self.services.get(service), "op_" + op, None)
        if method is None:
            raise DeviceError("NotImplementedError", f"hostemu: no {service}.{op} on the host")
        kwargs: dict[str, Any] = {}
        if data is not None:
            kwargs["data"] = data
        if size is not None:
            kwargs["size"] = size
        try:
            result = method(*args, **kwargs)
        except (DeviceError, VMStop):
            raise
        except Exception as exc:  # a host bug or bad arguments from device code: never fatal
            log.exception("hostemu: %s.%s%r failed", service, op, tuple(args))
            raise DeviceError("RuntimeError", f"hostemu: {service}.{op} failed: {exc}") from None
        if not isinstance(result, Reply):
            result = Reply(result)
        if size is not None and len(result.data) > size:
            raise DeviceError("RuntimeError", f"hostemu: {service}.{op} returned too much")
        return result

    def dispatch(self, frame: dict[str, Any]) -> bytes:
        """The encoded reply to one call frame. Raises VMStop when the run must end now."""
        call = call_from_frame(frame)
        for hook in self.call_hooks:
            hook()
        probe = self._take_probe()  # asked before this call: the device probes when it returns
        try:
            result = self.call(call.service, call.op, call.args, data=call.data, size=call.size, hooks=False)
        except DeviceError as exc:
            return encode_reply(error=exc, probe=probe)
        try:
            return encode_reply(result.result, data=result.data, probe=probe,
                                exhaust=self._take_exhaustion(call.service, call.op))
        except (TypeError, ValueError) as exc:  # a result JSON cannot carry: a host bug
            log.error("hostemu: %s.%s returned %r", call.service, call.op, result.result)
            error = DeviceError("RuntimeError", f"hostemu: {call.service}.{call.op} bad result: {exc}")
            return encode_reply(error=error, probe=probe)
