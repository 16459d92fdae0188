"""The contract between host services and the VM: what a service method may return or raise.

A bridged call from device code, `_hostemu.call("socket", "connect", h, ip, port)`, runs
`services["socket"].op_connect(h, ip, port)` in the parent. Arguments and results are JSON values
that the VM side receives as plain ints, strs, floats or None (keep ints within 31 bits: the JS
layer of the port truncates wider ones). Bytes move separately:

- `call_out(...)` sends bytes from a device buffer: the method gets them as `data=` (bytes);
- `call_in(...)` asks for bytes into a device buffer of `size=` bytes: the method returns
  `Reply(result, data)` with at most `size` bytes.

To raise an exception inside the VM, raise `DeviceError("OSError", errno)` (or any name in
`_hostemu._EXCEPTIONS`); `VMStop` ends the whole run (a reset, a deep sleep, a power cut).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

JSONValue = Any


@dataclass(frozen=True)
class Reply:
    """A result plus bytes for the caller's buffer (for `call_in`)."""

    result: JSONValue = None
    data: bytes = b""


class DeviceError(Exception):
    """Raised by a service method: becomes `exc_type(*args)` raised in the device code."""

    def __init__(self, exc_type: str, *args: JSONValue) -> None:
        super().__init__(exc_type, *args)
        self.exc_type = exc_type
        self.exc_args = list(args)


def os_error(errno: int, message: str | None = None) -> DeviceError:
    """OSError(errno) as MicroPython raises it (a message only where the port adds one)."""
    return DeviceError("OSError", errno) if message is None else DeviceError("OSError", errno, message)


class VMStop(Exception):
    """Raised by a service method to end the run now, e.g. machine.reset() or deepsleep()."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ProtocolError(Exception):
    """The VM sent something the bridge cannot understand: a bug in the bridge, not device code."""


@dataclass(frozen=True)
class CallFrame:
    service: str
    op: str
    args: list[JSONValue]
    data: bytes | None
    size: int | None


def parse_frame(line: bytes) -> dict[str, Any]:
    try:
        frame = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {line[:200]!r}") from exc
    if not isinstance(frame, dict) or not isinstance(frame.get("t"), str):
        raise ProtocolError(f"not a frame: {line[:200]!r}")
    return frame


def call_from_frame(frame: dict[str, Any]) -> CallFrame:
    service, op, args = frame.get("s"), frame.get("o"), frame.get("a", [])
    if not isinstance(service, str) or not isinstance(op, str) or not isinstance(args, list):
        raise ProtocolError(f"malformed call: {frame!r:.200}")
    data = base64.b64decode(frame["b"]) if "b" in frame else None
    size = frame.get("n")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise ProtocolError(f"bad buffer size in call: {frame!r:.200}")
    return CallFrame(service, op, args, data, size)


def encode_reply(result: JSONValue = None, *, data: bytes = b"", error: DeviceError | None = None,
                 probe: str | None = None, exhaust: bool = False) -> bytes:
    reply: dict[str, Any] = {}
    if error is not None:
        reply["e"] = [error.exc_type, error.exc_args]
    else:
        reply["r"] = result
        if data:
            reply["b"] = base64.b64encode(data).decode("ascii")
    if probe is not None:
        reply["p"] = probe
    if exhaust:
        reply["x"] = 1  # fill the heap before returning (hostemu.unix's device side honours it)
    return (json.dumps(reply, separators=(",", ":")) + "\n").encode()
