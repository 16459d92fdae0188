"""IoT Hub MQTT topic names and property bags, hub side. Pure.

What both ends of the dialect share is written once, in the device library (``iothub.topics``,
plain MicroPython that CPython imports too): the property-bag codec and the subscription
filters. The topics only the hub builds or parses are here; tests/localhub/test_dialect.py
round-trips each against the device library's own builders and parsers.

A parser returns ``None`` for "not this kind of topic" and raises :class:`TopicError` for a topic
of its kind that is broken, so a dispatcher can try each in turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping
from urllib.parse import quote

from iothub import topics as device_topics
from iothub.errors import ProtocolError

# Subscriptions a device may hold (one per row, at most 5 live at once).
SUB_C2D = "c2d"
SUB_TWIN_RES = "twin-res"
SUB_DESIRED = "desired"
SUB_METHODS = "methods"


class TopicError(ValueError):
    """A topic of a known kind whose parameters are malformed."""


_FIXED_FILTERS = {device_topics.TWIN_RES_SUB: SUB_TWIN_RES,
                  device_topics.TWIN_DESIRED_SUB: SUB_DESIRED,
                  device_topics.METHODS_SUB: SUB_METHODS}


def decode_property_bag(bag: str) -> dict[str, str | None]:
    """``k=v&k2=v2``, percent-encoded (``+`` is a plus: the SDKs use quote()); a key without
    ``=`` has the value None, as the official SDKs read it. The device library's parser, so both ends read a bag alike;
    TopicError for a bad %-escape or an empty key."""
    try:
        return dict(device_topics.decode_bag(bag))
    except ProtocolError as exc:
        raise TopicError(str(exc)) from exc


def encode_property_bag(props: Mapping[str, str | None]) -> str:
    """Every key and value percent-encoded (``None``: the key alone); the device library's."""
    return str(device_topics.encode_bag(props))


def subscription_kind(topic_filter: str, device_id: str, module_id: str | None = None) -> str | None:
    """Which IoT Hub subscription a SUBSCRIBE filter is, or None if the hub does not offer it.
    The filters are the ones the device library subscribes with. A module has no C2D (IoT Hub
    sends modules messages only through IoT Edge routes)."""
    if module_id is None and topic_filter == device_topics.c2d_sub(device_id):
        return SUB_C2D
    return _FIXED_FILTERS.get(topic_filter)


def _query(topic: str, prefix: str) -> dict[str, str | None] | None:
    """Parameters after ``prefix`` + ``?``; None if the topic does not start with ``prefix``."""
    if not topic.startswith(prefix):
        return None
    rest = topic[len(prefix):]
    if not rest.startswith("?"):
        raise TopicError("expected ?$rid=...")
    return decode_property_bag(rest[1:])


@dataclass
class Telemetry:
    properties: dict[str, str | None]


def parse_telemetry(topic: str, device_id: str, module_id: str | None = None) -> Telemetry | None:
    prefix = str(device_topics.device_prefix(device_id, module_id)) + "messages/events/"
    if topic == prefix[:-1]:
        return Telemetry({})
    if not topic.startswith(prefix):
        return None
    bag = topic[len(prefix):]
    if "/" in bag:
        raise TopicError("telemetry property bag contains '/'")
    return Telemetry(decode_property_bag(bag))


@dataclass
class TwinRequest:
    kind: str  # "GET" or "PATCH-reported"
    rid: str


def parse_twin_request(topic: str) -> TwinRequest | None:
    for prefix, kind in (("$iothub/twin/GET/", "GET"),
                         ("$iothub/twin/PATCH/properties/reported/", "PATCH-reported")):
        params = _query(topic, prefix)
        if params is not None:
            rid = params.get("$rid")
            if not rid:
                raise TopicError("twin request without $rid")
            return TwinRequest(kind, rid)
    return None


@dataclass
class MethodResponse:
    status: int
    rid: str


def parse_method_response(topic: str) -> MethodResponse | None:
    prefix = "$iothub/methods/res/"
    if not topic.startswith(prefix):
        return None
    status_text, sep, rest = topic[len(prefix):].partition("/")
    if not sep or not rest.startswith("?"):
        raise TopicError("method response topic must be $iothub/methods/res/{status}/?$rid=")
    try:
        status = int(status_text)
    except ValueError as exc:
        raise TopicError("method response status is not an integer") from exc
    rid = decode_property_bag(rest[1:]).get("$rid")
    if not rid:
        raise TopicError("method response without $rid")
    return MethodResponse(status, rid)


def c2d_topic(device_id: str, props: dict[str, str | None]) -> str:
    return f"devices/{device_id}/messages/devicebound/" + encode_property_bag(props)


def twin_response_topic(status: int, rid: str, version: int | None = None) -> str:
    topic = f"$iothub/twin/res/{status}/?$rid={quote(rid, safe='')}"
    if version is not None:
        topic += f"&$version={version}"
    return topic


def desired_patch_topic(version: int) -> str:
    return f"$iothub/twin/PATCH/properties/desired/?$version={version}"


def method_request_topic(name: str, rid: str) -> str:
    return f"$iothub/methods/POST/{quote(name, safe='')}/?$rid={quote(rid, safe='')}"
