"""The Event Hub half of the AMQP endpoint: what a partition receiver reads and where it starts,
and the ``$management`` answers (event hub and partition properties) ``azure-eventhub`` asks for.

Receivers attach at ``{entity}/ConsumerGroups/{group}/Partitions/{n}`` (``$Default`` or a group
made with ``localhub eventhub consumer-group create``) and are positioned by the selector filter
the client sends (``amqp.annotation.x-opt-offset > '-1'``, ``'@latest'``,
``x-opt-sequence-number``, ``x-opt-enqueued-time``). Events are the hub's telemetry rows: the
offset is the row's hub-wide seq, the sequence number counts within the partition.
"""

from __future__ import annotations

import re
from typing import Any

from proton import Described, Message, symbol, timestamp

from ..storage.state import EVENTHUB_NAME
from ..storage.store import PARTITIONS, Store, TelemetryRow
from .amqp_frames import AzureMessage, as_text

ENTITY = EVENTHUB_NAME
SELECTOR = symbol("apache.org:selector-filter:string")
_POSITION = re.compile(r"amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'?([^']*)'?")
PARTITION_ADDRESS = re.compile(r"^(?:amqps://[^/]+/)?([^/]+)/ConsumerGroups/([^/]+)/Partitions/(\d+)$",
                               re.IGNORECASE)
CREATED = timestamp(0)


def event_message(row: TelemetryRow) -> Message:
    """A telemetry row as IoT Hub's built-in endpoint delivers it."""
    system = row.system_properties
    msg = AzureMessage(body=row.body)
    msg.inferred = True  # bytes: a data section, as the service sends
    if system.get("message-id"):
        msg.id = system["message-id"]
    if system.get("correlation-id"):
        msg.correlation_id = system["correlation-id"]
    if system.get("content-type"):
        msg.content_type = system["content-type"]
    if system.get("content-encoding"):
        msg.content_encoding = system["content-encoding"]
    msg.properties = dict(row.properties)
    enqueued = timestamp(int(row.enqueued * 1000))
    annotations: dict[Any, Any] = {
        symbol("x-opt-sequence-number"): row.partition_seq,
        symbol("x-opt-offset"): str(row.seq),
        symbol("x-opt-enqueued-time"): enqueued,
        symbol("iothub-connection-device-id"): row.device_id,
        symbol("iothub-enqueuedtime"): enqueued,
        symbol("iothub-message-source"): system.get("iothub-message-source") or "Telemetry",
    }
    if system.get("iothub-connection-module-id"):
        annotations[symbol("iothub-connection-module-id")] = system["iothub-connection-module-id"]
    msg.annotations = annotations
    return msg


def start_offset(store: Store, partition: int, filters: Any) -> int:
    """The offset to deliver after, from a receiver's selector filter (none: the start)."""
    selector = ""
    filter_set = None
    if filters is not None:
        filters.rewind()
        if filters.next() is not None:
            filter_set = filters.get_object()
    if isinstance(filter_set, dict):
        for value in filter_set.values():
            if isinstance(value, Described) and as_text(value.descriptor) == SELECTOR:
                selector = as_text(value.value)
    match = _POSITION.search(selector)
    if not match:
        return 0
    kind, operator, value = match.groups()
    inclusive = operator == ">="
    if kind == "offset":
        if value == "@latest":
            return store.partition_info(partition).last_offset
        offset = int(value) if value.lstrip("-").isdigit() else -1
        return max(0, offset - 1 if inclusive else offset)
    if kind == "sequence-number":
        number = int(value)
        return store.offset_before_sequence(partition, number if inclusive else number + 1)
    return store.offset_before_time(partition, int(value) / 1000.0, inclusive)


def management_answer(store: Store, props: dict[str, Any]) -> tuple[int, str, Any]:
    """A READ of the event hub or of one partition: (status, description, body)."""
    if props.get("operation") != "READ" or str(props.get("name", "")).lower() != ENTITY:
        return 404, "no such entity or operation", None
    kind = props.get("type")
    if kind == "com.microsoft:eventhub":
        return 200, "OK", {"name": ENTITY, "created_at": CREATED,
                           "partition_ids": [str(p) for p in range(PARTITIONS)]}
    if kind == "com.microsoft:partition":
        partition = str(props.get("partition", ""))
        if not partition.isdigit() or int(partition) >= PARTITIONS:
            return 404, f"no partition {partition[:20]!r}", None
        info = store.partition_info(int(partition))
        return 200, "OK", {
            "name": ENTITY, "partition": partition,
            "begin_sequence_number": max(info.first_seq, 0),
            "last_enqueued_sequence_number": info.last_seq,
            "last_enqueued_offset": str(info.last_offset),
            "last_enqueued_time_utc": timestamp(int(info.last_enqueued * 1000)),
            "is_partition_empty": info.last_seq < 0,
        }
    return 400, f"unknown management type {str(kind)[:60]!r}", None
