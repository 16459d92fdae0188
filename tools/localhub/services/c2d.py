"""Cloud-to-device messages: queued in the store, delivered once the device subscribes.

Rules: body at most 64 KB; at most 50 messages pending per device (the 51st is refused with
403 DeviceMaximumQueueDepthExceeded); each has a time to live (default 1 hour, at most 48 hours),
expired ones are dropped. Delivery follows the subscription's QoS: QoS 1 messages stay queued
until the device's PUBACK (redelivered after a reconnect), QoS 0 ones are removed when sent.
With clean session 0 the C2D subscription is remembered across connections (as IoT Hub does).

Feedback: a message sent with ``iothub-ack`` (positive, negative or full) leaves a record in the
feedback queue (servicebound.py) when it ends: Success when the device completes it (its PUBACK,
or the send of a QoS 0 delivery), Expired when its time to live runs out first (the hub sweeps
every few seconds), Purged when the queue is purged. MQTT has no reject or abandon, so Rejected
and DeliveryCountExceeded never happen here.
"""

from __future__ import annotations

import base64
import uuid
from typing import Callable

from ..protocol.errors import HubError, bad_request
from ..protocol.topics import SUB_C2D, c2d_topic
from ..storage.store import C2DRow, Store
from .registry import Registry
from .servicebound import ACKS, EXPIRED, PURGED, SUCCESS, ServiceBoundQueues, feedback_wanted
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
                 clock: Callable[[], float], servicebound: ServiceBoundQueues) -> None:
        self.store = store
        self.registry = registry
        self.sessions = sessions
        self.clock = clock
        self.servicebound = servicebound
        # id(session) -> {packet id: message} for QoS 1 deliveries awaiting PUBACK
        self._inflight: dict[int, dict[int, C2DRow]] = {}

    def pending_count(self, device_id: str) -> int:
        self.expire(device_id)
        return self.store.count_c2d(device_id, self.clock())

    def expire(self, device_id: str | None = None) -> None:
        """Drop what outlived its time to live (one device's, or everyone's), with feedback."""
        self._ended(self.store.expire_c2d(self.clock(), device_id), EXPIRED)

    def _ended(self, messages: list[C2DRow], status: str) -> None:
        records = []
        for msg in messages:
            if feedback_wanted(msg.properties.get("iothub-ack"), status):
                dev = self.store.get_device(msg.device_id)
                records.append(self.servicebound.feedback_record(
                    msg.device_id, dev.generation_id if dev else "", msg.message_id, status))
        self.servicebound.feedback(records)

    def send(self, device_id: str, body: bytes, properties: dict[str, str] | None = None,
             message_id: str | None = None, ttl: int | None = None) -> str:
        """Queue a message; return its message id. Raises HubError (404, 400, 413, 403)."""
        self.registry.require(device_id)
        props = {str(k): str(v) for k, v in (properties or {}).items()}
        for key in props:
            if not key or any(ord(c) < 0x20 for c in key):
                raise bad_request("invalid property name")
        if props.get("iothub-ack", "none").lower() not in ACKS:
            raise bad_request("iothub-ack must be none, positive, negative or full")
        if len(body) > MAX_BODY:
            raise HubError(413, "MessageTooLarge", "C2D message body exceeds 64 KB")
        ttl = DEFAULT_TTL if ttl is None else ttl
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL:
            raise bad_request(f"ttl must be 1..{MAX_TTL} seconds")
        if self.pending_count(device_id) >= MAX_PENDING:
            raise HubError(403, "DeviceMaximumQueueDepthExceeded",
                           f"device {device_id!r} already has {MAX_PENDING} pending messages")
        message_id = message_id or props.pop("messageId", None) or str(uuid.uuid4())
        props["messageId"] = message_id
        now = self.clock()
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
        busy = {msg.seq for msg in inflight.values()}
        self.expire(session.device_id)
        for msg in self.store.pending_c2d(session.device_id, self.clock()):
            if msg.seq in busy:
                continue
            bag: dict[str, str | None] = {}
            for key, value in msg.properties.items():
                bag[SYSTEM_PROPERTIES.get(key, key)] = value
            bag["$.to"] = f"/devices/{session.device_id}/messages/devicebound"
            pid = session.publish(c2d_topic(session.device_id, bag), msg.body, qos)
            if qos == 0:
                self._complete(msg)
            elif pid is not None:
                inflight[pid] = msg

    def on_puback(self, session: DeviceSession, packet_id: int) -> None:
        msg = self._inflight.get(id(session), {}).pop(packet_id, None)
        if msg is not None:
            self._complete(msg)  # MQTT PUBACK completes the message

    def _complete(self, msg: C2DRow) -> None:
        self.store.complete_c2d(msg.seq)
        self._ended([msg], SUCCESS)

    def session_closed(self, session: DeviceSession) -> None:
        self._inflight.pop(id(session), None)

    def purge(self, device_id: str) -> int:
        self.registry.require(device_id)
        purged = self.store.purge_c2d(device_id)
        self._ended(purged, PURGED)
        return len(purged)


def decode_body(body: str | None, body_b64: str | None) -> bytes:
    if body_b64 is not None:
        try:
            return base64.b64decode(body_b64, validate=True)
        except ValueError as exc:
            raise bad_request("bodyBase64 is not base64") from exc
    return (body or "").encode("utf-8")
