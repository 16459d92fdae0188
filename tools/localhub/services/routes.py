"""Message routes of the built-in endpoint beyond the devices' telemetry (which always goes
there): IoT Hub sends such events only once a route for their source exists
(``az iot hub route create --source twinchangeevents --endpoint-name events``); the local hub
takes them as ``serve --route SOURCE``.

``twinChangeEvents``: every change of a twin (a device's reported patch, the back end's tags and
desired patch or replacement) as a twin change notification, the change as its body, with IoT
Hub's application properties (hubName, deviceId, moduleId, operationTimestamp,
iothub-message-schema, opType).
"""

from __future__ import annotations

import json
from typing import Any

from ..protocol.twin import iso_now
from ..storage.store import DeviceRow, ModuleRow
from .telemetry import TelemetryService
from .twins import TwinService

TWIN_CHANGE_EVENTS = "twinChangeEvents"
SOURCES = (TWIN_CHANGE_EVENTS,)


class Routes:
    def __init__(self, enabled: frozenset[str], hub_name: str, telemetry: TelemetryService,
                 twins: TwinService) -> None:
        unknown = set(enabled) - set(SOURCES)
        if unknown:
            raise ValueError(f"no such route source: {', '.join(sorted(unknown))}")
        self.enabled = enabled
        self.hub_name = hub_name
        self.telemetry = telemetry
        if TWIN_CHANGE_EVENTS in enabled:
            twins.change_listeners.append(self.twin_changed)

    def twin_changed(self, row: DeviceRow | ModuleRow, change: dict[str, Any], op_type: str) -> None:
        module_id = row.module_id if isinstance(row, ModuleRow) else None
        properties: dict[str, str | None] = {
            "hubName": self.hub_name, "deviceId": row.device_id,
            "operationTimestamp": iso_now(self.telemetry.clock()),
            "iothub-message-schema": "twinChangeNotification", "opType": op_type}
        if module_id:
            properties["moduleId"] = module_id
        body = json.dumps(change, separators=(",", ":")).encode("utf-8")
        self.telemetry.record_event(row.device_id, module_id, TWIN_CHANGE_EVENTS, body, properties)
