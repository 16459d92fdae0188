"""Cloud-to-device messages: queued in the store, delivered once the device subscribes.

Rules: body at most 64 KB; at most 50 messages pending per device (the 51st is refused with
403 DeviceMaximumQueueDepthExceeded); each has a time to live (default 1 hour, at most 48 hours),
expired ones are dropped. Delivery follows the subscription's QoS: QoS 1 messages stay queued
until the device's PUBACK (redelivered after a reconnect), QoS 0 ones are removed when sent.
With clean session 0 the C2D subscription is remembered across connections (as IoT Hub does).
"""

from __future__ import annotations

import base64
import uuid
from typing import Callable

from ..protocol.errors import HubError, bad_request
from ..protocol.topics import SUB_C2D, c2d_topic
from ..storage.store import Store
from .registry import Registry
from .sessions import DeviceSession, SessionRegistry

MAX_BODY = 64 * 1024
MAX_PENDING = 50
DEFAULT_TTL = 3600
MAX_TTL = 48 * 3600

# Service-side property names that map to MQTT system properties in the topic's bag.
SYSTEM_PROPERTIES = {
    "messageId": "$.mid", "correlationId": "$.cid", "contentType": "$.ct",
    "contentEncoding": "$.ce", "userId": "$.uid", "to": "$.to", "expiryTimeUtc": "$.exp",
}


class C2DService:
    def __init__(self, store: Store, registry: Registry, sessions: SessionRegistry,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.registry = registry
        self.sessions = sessions
        self.clock = clock
        # id(session) -> {packet id: c2d seq} for QoS 1 deliveries awaiting PUBACK
        self._inflight: dict[int, dict[int, int]] = {}

    def pending_count(self, device_id: str) -> int:
        return self.store.count_c2d(device_id, self.clock())

    def send(self, device_id: str, body: bytes, properties: dict[str, str] | None = None,
             message_id: str | None = None, ttl: int | None = None) -> str:
        """Queue a message; return its message id. Raises HubError (404, 400, 413, 403)."""
        self.registry.require(device_id)
        props = {str(k): str(v) for k, v in (properties or {}).items()}
        for key in props:
            if not key or any(ord(c) < 0x20 for c in key):
                raise bad_request("invalid property name")
        if len(body) > MAX_BODY:
            raise HubError(413, "MessageTooLarge", "C2D message body exceeds 64 KB")
        ttl = DEFAULT_TTL if ttl is None else ttl
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL:
            raise bad_request(f"ttl must be 1..{MAX_TTL} seconds")
        now = self.clock()
        if self.store.count_c2d(device_id, now) >= MAX_PENDING:
            raise HubError(403, "DeviceMaximumQueueDepthExceeded",
                           f"device {device_id!r} already has {MAX_PENDING} pending messages")
        message_id = message_id or props.pop("messageId", None) or str(uuid.uuid4())
        props["messageId"] = message_id
        self.store.add_c2d(device_id, message_id, body, props, now, now + ttl)
        session = self.sessions.get(device_id)
        if session is not None:
            self.deliver(session)
        return message_id

    def deliver(self, session: DeviceSession) -> None:
        """Send every pending message not already in flight to a subscribed session."""
        qos = session.subscriptions.get(SUB_C2D)
        if qos is None:
            return
        inflight = self._inflight.setdefault(id(session), {})
        busy = set(inflight.values())
        for msg in self.store.pending_c2d(session.device_id, self.clock()):
            if msg.seq in busy:
                continue
            bag: dict[str, str | None] = {}
            for key, value in msg.properties.items():
                bag[SYSTEM_PROPERTIES.get(key, key)] = value
            bag["$.to"] = f"/devices/{session.device_id}/messages/devicebound"
            pid = session.publish(c2d_topic(session.device_id, bag), msg.body, qos)
            if qos == 0:
                self.store.complete_c2d(msg.seq)
            elif pid is not None:
                inflight[pid] = msg.seq

    def on_puback(self, session: DeviceSession, packet_id: int) -> None:
        seq = self._inflight.get(id(session), {}).pop(packet_id, None)
        if seq is not None:
            self.store.complete_c2d(seq)  # MQTT PUBACK completes the message

    def session_closed(self, session: DeviceSession) -> None:
        self._inflight.pop(id(session), None)

    def purge(self, device_id: str) -> int:
        self.registry.require(device_id)
        return self.store.purge_c2d(device_id)


def decode_body(body: str | None, body_b64: str | None) -> bytes:
    if body_b64 is not None:
        try:
            return base64.b64decode(body_b64, validate=True)
        except ValueError as exc:
            raise bad_request("bodyBase64 is not base64") from exc
    return (body or "").encode("utf-8")
