"""Device-to-cloud telemetry: recorded in the store and offered to readers (``monitor``, tests).

The local hub keeps the latest messages in SQLite, in IoT Hub's 4 partitions (by device id), and
serves them to its Event Hub-compatible AMQP endpoint (endpoints/amqp.py) and over HTTPS with a
long poll (``GET /localhub/telemetry?after=<seq>&wait=<s>``). System properties keep their IoT Hub names
(``message-id``, ``correlation-id``, ``content-type``, ``content-encoding``,
``iothub-connection-device-id``, ``iothub-enqueuedtime``); application properties are returned
as sent.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Callable

from ..protocol.twin import iso_now
from ..storage.store import Store, TelemetryRow, partition_of
from .longpoll import rows_or_wait

MAX_MESSAGE = 256 * 1024

# Property-bag keys a device sets -> the system property names a reader sees.
SYSTEM_FROM_BAG = {
    "$.mid": "message-id", "$.cid": "correlation-id", "$.ct": "content-type",
    "$.ce": "content-encoding", "$.uid": "user-id", "$.exp": "absolute-expiry-time",
    "$.on": "output-name", "$.ifid": "iothub-interface-id",
}


class TelemetryService:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._new = asyncio.Event()
        # told the partition of each new message (the AMQP endpoint wakes only its readers)
        self.listeners: list[Callable[[int], None]] = []

    def record(self, device_id: str, body: bytes, bag: dict[str, str | None],
               retain: bool = False, module_id: str | None = None) -> int:
        now = self.clock()
        app: dict[str, str | None] = {}
        system: dict[str, str | None] = {"iothub-connection-device-id": device_id}
        if module_id:
            system["iothub-connection-module-id"] = module_id
        system["iothub-enqueuedtime"] = iso_now(now)
        for key, value in bag.items():
            if key in SYSTEM_FROM_BAG:
                system[SYSTEM_FROM_BAG[key]] = value
            elif key.startswith("$."):
                system[key] = value
            else:
                app[key] = value
        if retain:
            app["x-opt-retain"] = "true"  # IoT Hub forwards a retained PUBLISH with this property
        return self._add(device_id, body, app, system, now)

    def record_event(self, device_id: str, module_id: str | None, source: str, body: bytes,
                     properties: dict[str, str | None]) -> int:
        """A message the hub itself routes to the built-in endpoint (routes.py), beside the
        devices' telemetry: ``source`` is its ``iothub-message-source``."""
        now = self.clock()
        system: dict[str, str | None] = {"iothub-connection-device-id": device_id,
                                         "iothub-enqueuedtime": iso_now(now),
                                         "iothub-message-source": source,
                                         "content-type": "application/json", "content-encoding": "utf-8"}
        if module_id:
            system["iothub-connection-module-id"] = module_id
        return self._add(device_id, body, properties, system, now)

    def _add(self, device_id: str, body: bytes, app: dict[str, str | None],
             system: dict[str, str | None], now: float) -> int:
        seq = self.store.add_telemetry(device_id, body, app, system, now)
        self._new.set()
        self._new = asyncio.Event()
        partition = partition_of(device_id)
        for listener in self.listeners:
            listener(partition)
        return seq

    async def read(self, after: int, device_id: str | None, limit: int,
                   wait: float) -> list[TelemetryRow]:
        """Messages with seq > ``after``; wait up to ``wait`` seconds for the first one."""
        return await rows_or_wait(lambda: self.store.telemetry_after(after, device_id, limit),
                                  lambda: self._new, wait)


def row_json(row: TelemetryRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seq": row.seq,
        "deviceId": row.device_id,
        "enqueuedTime": iso_now(row.enqueued),
        "properties": row.properties,
        "systemProperties": row.system_properties,
        "bodyBase64": base64.b64encode(row.body).decode("ascii"),
    }
    try:
        out["body"] = row.body.decode("utf-8")
    except UnicodeDecodeError:
        out["body"] = None
    return out
