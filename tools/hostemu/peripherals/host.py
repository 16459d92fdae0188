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

    def register_service(self, name: str, service: object) -> None:
        """Answer `_hostemu.call(name, op, ...)` from device code with `service.op_<op>(...)`."""
        self.services[name] = service

    def request_heap_probe(self, label: str) -> None:
        """Ask for gc.collect() + a heap report at the device's next bridge call (any thread)."""
        with self._lock:
            self._probes.append(label)

    def _take_probe(self) -> str | None:
        with self._lock:
            return self._probes.pop(0) if self._probes else None

    def dispatch(self, frame: dict[str, Any]) -> bytes:
        """The encoded reply to one call frame. Raises VMStop when the run must end now."""
        call = call_from_frame(frame)
        for hook in self.call_hooks:
            hook()
        probe = self._take_probe()
        method = getattr(self.services.get(call.service), "op_" + call.op, None)
        if method is None:
            error = DeviceError("NotImplementedError", f"hostemu: no {call.service}.{call.op} on the host")
            return encode_reply(error=error, probe=probe)
        kwargs: dict[str, Any] = {}
        if call.data is not None:
            kwargs["data"] = call.data
        if call.size is not None:
            kwargs["size"] = call.size
        try:
            result = method(*call.args, **kwargs)
        except DeviceError as exc:
            return encode_reply(error=exc, probe=probe)
        except VMStop:
            raise
        except Exception as exc:  # a host bug or bad arguments from device code: never fatal
            log.exception("hostemu: %s.%s%r failed", call.service, call.op, tuple(call.args))
            error = DeviceError("RuntimeError", f"hostemu: {call.service}.{call.op} failed: {exc}")
            return encode_reply(error=error, probe=probe)
        if not isinstance(result, Reply):
            result = Reply(result)
        if call.size is not None and len(result.data) > call.size:
            error = DeviceError("RuntimeError", f"hostemu: {call.service}.{call.op} returned too much")
            return encode_reply(error=error, probe=probe)
        try:
            return encode_reply(result.result, data=result.data, probe=probe)
        except (TypeError, ValueError) as exc:  # a result JSON cannot carry: a host bug
            log.error("hostemu: %s.%s returned %r", call.service, call.op, result.result)
            error = DeviceError("RuntimeError", f"hostemu: {call.service}.{call.op} bad result: {exc}")
            return encode_reply(error=error, probe=probe)
