"""Bulk registry operations (``POST /devices``, the service SDK's
``bulk_create_or_update_devices``): up to 100 devices per call, each with its ``importMode``.

Each device is done or refused on its own, as IoT Hub does: the answer is 200 with
``isSuccessful: true`` when all were done, else 400 with one error per refused device
(``deviceId``, ``errorCode``, ``errorStatus``, ``operation``); what succeeded stays done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..protocol.errors import HubError, bad_request
from ..protocol.twin import TwinError

if TYPE_CHECKING:
    from .hub import Hub

MAX_DEVICES = 100
MODES = ("create", "update", "updateIfMatchETag", "delete", "deleteIfMatchETag", "updateTwin",
         "updateTwinIfMatchETag")


def apply(hub: Hub, body: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, BulkRegistryOperationResult) for a list of ExportImportDevice objects."""
    if not isinstance(body, list) or not body:
        raise bad_request("the body must be a list of 1 to 100 devices")
    if len(body) > MAX_DEVICES:
        raise bad_request(f"at most {MAX_DEVICES} devices per bulk operation", "TooManyDevices")
    ids = [item.get("id") if isinstance(item, dict) else None for item in body]
    if len(set(ids)) != len(ids):
        raise bad_request("a device may appear only once in a bulk operation")
    errors = []
    for item, device_id in zip(body, ids):
        mode = item.get("importMode") if isinstance(item, dict) else None
        try:
            if not isinstance(device_id, str) or not device_id:
                raise bad_request("each device needs an id")
            if item.get("moduleId"):
                raise HubError(400, "ArgumentInvalid", "module identities are not offered by the local hub")
            _one(hub, device_id, mode, item)
        except HubError as exc:
            errors.append({"deviceId": device_id, "moduleId": None, "errorCode": exc.code,
                           "errorStatus": exc.message, "operation": mode})
        except TwinError as exc:
            errors.append({"deviceId": device_id, "moduleId": None, "errorCode": "ArgumentInvalid",
                           "errorStatus": str(exc), "operation": mode})
    return (400 if errors else 200), {"isSuccessful": not errors, "errors": errors, "warnings": []}


def _one(hub: Hub, device_id: str, mode: Any, item: dict[str, Any]) -> None:
    registry = hub.registry
    etag = item.get("eTag")
    exists = hub.store.get_device(device_id) is not None
    if mode == "create":
        if exists:
            raise HubError(409, "DeviceAlreadyExists", f"device {device_id!r} already exists")
        registry.put(device_id, _device_body(item), None)
    elif mode in ("update", "updateIfMatchETag"):
        if_match = "*" if mode == "update" else etag
        if mode == "updateIfMatchETag" and not exists:
            raise HubError(404, "DeviceNotFound", f"device {device_id!r} not registered")
        registry.put(device_id, _device_body(item), if_match if exists else None)
    elif mode in ("delete", "deleteIfMatchETag"):
        if mode == "delete" and not exists:
            return  # IoT Hub: deleting what is not there is no error
        registry.delete(device_id, etag if mode == "deleteIfMatchETag" else None)
    elif mode in ("updateTwin", "updateTwinIfMatchETag"):
        patch: dict[str, Any] = {}
        if item.get("tags") is not None:
            patch["tags"] = item["tags"]
        desired = (item.get("properties") or {}).get("desired")
        if desired is not None:
            patch["properties"] = {"desired": desired}
        hub.twins.update(device_id, patch, item.get("twinETag") if mode == "updateTwinIfMatchETag" else None)
    else:
        raise bad_request(f"importMode must be one of {', '.join(MODES)}")


def _device_body(item: dict[str, Any]) -> dict[str, Any]:
    body = {key: item[key] for key in ("status", "statusReason", "authentication", "capabilities")
            if item.get(key) is not None}
    body["deviceId"] = item["id"]
    return body
