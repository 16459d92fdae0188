"""Direct methods: invoked by the back end, delivered to the device, answered or timed out.

IoT Hub rules kept here: 404 (DeviceNotOnline) when the device is not connected and subscribed
to ``$iothub/methods/POST/#`` within ``connectTimeoutInSeconds`` (0..300, default 0); 504 (GatewayTimeoutError) when it does not answer within
``responseTimeoutInSeconds``; payload at most 128 KB each way. The caller gets
``{"status": <device's status>, "payload": <device's JSON or null>}``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from ..protocol.errors import HubError, bad_request
from ..protocol.topics import SUB_METHODS, method_request_topic
from .sessions import DeviceSession, SessionRegistry

MAX_PAYLOAD = 128 * 1024
MIN_TIMEOUT, MAX_TIMEOUT, DEFAULT_TIMEOUT = 5, 300, 30
MAX_CONNECT_TIMEOUT = 300
CONNECT_POLL = 0.25  # how often a device awaited by connectTimeoutInSeconds is looked for


def check_timeout(value: Any, default: int = DEFAULT_TIMEOUT) -> int:
    """IoT Hub accepts 5..300 s; an absent value means 30 s."""
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise bad_request(f"responseTimeoutInSeconds must be an integer {MIN_TIMEOUT}..{MAX_TIMEOUT}")
    return value


def check_connect_timeout(value: Any) -> int:
    """``connectTimeoutInSeconds``: 0..300, absent means 0 (the device must be online now)."""
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CONNECT_TIMEOUT:
        raise bad_request(f"connectTimeoutInSeconds must be an integer 0..{MAX_CONNECT_TIMEOUT}")
    return value


class MethodService:
    def __init__(self, sessions: SessionRegistry) -> None:
        self.sessions = sessions
        self._rids = itertools.count(1)
        # rid -> (device id, future of (status, payload bytes))
        self._pending: dict[str, tuple[str, asyncio.Future[tuple[int, bytes]]]] = {}

    async def invoke(self, device_id: str, name: str, payload: Any,
                     timeout: float, connect_timeout: float = 0) -> dict[str, Any]:
        if not isinstance(name, str) or not name or len(name) > 128 or "/" in name:
            raise bad_request("methodName must be a non-empty name without '/'")
        body = json.dumps(payload, separators=(",", ":")).encode()
        if len(body) > MAX_PAYLOAD:
            raise HubError(413, "MessageTooLarge", "method payload exceeds 128 KB")
        session = await self._online(device_id, connect_timeout)
        rid = format(next(self._rids), "x")
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (device_id, future)
        try:
            session.publish(method_request_topic(name, rid), body, session.subscriptions[SUB_METHODS])
            status, raw = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError as exc:
            raise HubError(504, "GatewayTimeoutError",
                           f"timed out waiting for the response from device {device_id!r}") from exc
        finally:
            self._pending.pop(rid, None)
        return {"status": status, "payload": _decode_payload(raw)}

    async def _online(self, device_id: str, connect_timeout: float) -> DeviceSession:
        # IoT Hub waits up to connectTimeoutInSeconds for an offline device to connect (and
        # subscribe) before it answers 404.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + connect_timeout
        while True:
            session = self.sessions.get(device_id)
            if session is not None and SUB_METHODS in session.subscriptions:
                return session
            if loop.time() >= deadline:
                raise HubError(404, "DeviceNotOnline", f"device {device_id!r} is not online")
            await asyncio.sleep(CONNECT_POLL)

    def on_response(self, device_id: str, rid: str, status: int, raw: bytes) -> bool:
        """A device's answer; return False when no request of this device has that rid."""
        entry = self._pending.get(rid)
        if entry is None or entry[0] != device_id or entry[1].done():
            return False
        entry[1].set_result((status, raw))
        return True

    def device_gone(self, device_id: str) -> None:
        """Fail the device's outstanding requests at once rather than at their timeout."""
        for rid, (dev, future) in list(self._pending.items()):
            if dev == device_id and not future.done():
                future.set_exception(HubError(404, "DeviceNotOnline",
                                              f"device {device_id!r} disconnected"))


def _decode_payload(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # Not JSON (or nested past the parser's stack): hand it over as text rather than failing
        # the caller's request.
        return raw.decode("utf-8", "replace")
