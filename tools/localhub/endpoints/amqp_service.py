"""The IoT Hub half of the AMQP endpoint, what the service SDKs use: C2D sends on
``/messages/devicebound`` (``IoTHubRegistryManager.send_c2d_message``) and the service-bound
queues, ``/messages/serviceBound/feedback`` and ``/messages/serviceBound/filenotifications``.

A C2D message says its device in ``to`` (``/devices/{id}/messages/devicebound``); its message id,
correlation id, content type and encoding, absolute expiry time and application properties
(``iothub-ack`` among them) become the queued message's. The hub answers each with a disposition:
accepted once queued, rejected with the reason otherwise (unknown device, a full queue, a body
over 64 KB, a malformed message).
"""

from __future__ import annotations

import re
from typing import Any

from proton import Condition, Message, symbol, timestamp

from ..protocol.errors import HubError
from ..protocol.twin import iso_now
from ..services import servicebound
from ..services.c2d import C2DService
from ..storage.queuestore import QueuedMessage
from .amqp_frames import AzureMessage, as_text

DEVICEBOUND = "messages/devicebound"
# service-bound sources, lower-cased; IoT Hub's docs name the file queue both ways
QUEUE_SOURCES = {"messages/servicebound/feedback": servicebound.FEEDBACK,
                 "messages/servicebound/filenotifications": servicebound.FILE_NOTIFICATIONS,
                 "messages/servicebound/fileuploadnotifications": servicebound.FILE_NOTIFICATIONS}
_TO = re.compile(r"^/devices/([^/]+)/messages/devicebound$")
_TO_MODULE = re.compile(r"^/devices/[^/]+/modules/[^/]+/messages/devicebound$")

# HubError status -> the AMQP error condition of the rejection
_CONDITIONS = {400: "amqp:invalid-field", 403: "amqp:resource-limit-exceeded",
               404: "amqp:not-found", 413: "amqp:link:message-size-exceeded"}


class C2DRefused(Exception):
    def __init__(self, condition: str, description: str) -> None:
        super().__init__(description)
        self.condition = Condition(condition, description[:400])


def _text(value: Any) -> str | None:
    return None if value is None else as_text(value)


def send_c2d(c2d: C2DService, msg: Message, now: float) -> str:
    """Queue the C2D message ``msg`` for its device; its message id. Raises C2DRefused."""
    to = _text(msg.address) or ""
    match = _TO.match(to)
    if match is None:
        if _TO_MODULE.match(to):
            raise C2DRefused("amqp:not-allowed", "modules receive no cloud-to-device messages")
        raise C2DRefused("amqp:invalid-field", "'to' must be /devices/{deviceId}/messages/devicebound")
    body = msg.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    elif body is None:
        body = b""
    if not isinstance(body, bytes):
        raise C2DRefused("amqp:decode-error", "the body must be data or a string")
    props: dict[str, str] = {}
    for key, value in (msg.properties or {}).items():
        if value is not None:
            props[str(key)] = _text(value) or ""
    for name, value in (("correlationId", msg.correlation_id), ("contentType", msg.content_type),
                        ("contentEncoding", msg.content_encoding), ("userId", msg.user_id)):
        if value:
            props[name] = _text(value) or ""
    ttl = None
    if msg.expiry_time:  # absolute, in seconds since the epoch
        props["expiryTimeUtc"] = iso_now(msg.expiry_time)
        ttl = max(1, int(msg.expiry_time - now))
    elif msg.ttl:
        ttl = max(1, int(msg.ttl))
    try:
        return c2d.send(match.group(1), body, props, _text(msg.id), ttl)
    except HubError as exc:
        raise C2DRefused(_CONDITIONS.get(exc.status, "amqp:internal-error"), exc.message) from exc


def queue_message(row: QueuedMessage) -> Message:
    """A feedback batch or a file notification as IoT Hub hands it to a back end."""
    props = row.properties
    msg = AzureMessage(body=row.body, id=props.get("message-id"), content_type=props.get("content-type"),
                  user_id=str(props.get("user-id", "")).encode("utf-8"))
    msg.inferred = True
    msg.annotations = {symbol("iothub-enqueuedtime"): timestamp(int(row.enqueued * 1000))}
    return msg
