"""Device and module twins as a service: the back end's get/patch/replace and the device's (or
module's) GET/PATCH. Each call names an identity (registry.py): a device id, or
``{device}/{module}``.

Versions: ``desired.$version`` and ``reported.$version`` count changes of each section; the twin
``version`` counts every change; the twin ``etag`` is derived from it. A desired change is pushed
to the connected device on ``$iothub/twin/PATCH/properties/desired/?$version=n`` (the patch, or
the whole desired document after a replace, with ``$version`` inside), only while it is subscribed.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

from ..protocol.errors import HubError, bad_request
from ..protocol.topics import SUB_DESIRED, desired_patch_topic
from ..protocol.twin import (
    TwinError,
    check_size,
    iso_now,
    merge_patch,
    strip_read_only,
    validate_section,
)
from ..storage.store import DeviceRow, ModuleRow, Store
from .registry import Registry, etag_of, if_match_ok
from .sessions import SessionRegistry


def _twin_error(exc: TwinError) -> HubError:
    return HubError(exc.status, "ArgumentInvalid", str(exc))


def _write_section(name: str, current: dict[str, Any], given: Any, replace: bool
                   ) -> tuple[bool, dict[str, Any], dict[str, Any]]:
    """A back-end write of one section (tags or desired): merge-patch it (PATCH) or replace it
    (PUT; a section left out of a PUT is emptied). Returns (changed, new section, patch applied)."""
    new = copy.deepcopy(current)
    if given is None:
        return (bool(new), {}, {}) if replace else (False, new, {})
    patch = validate_section(strip_read_only(given), patch=not replace)
    if replace:
        changed, new = new != patch, copy.deepcopy(patch)
    else:
        changed = merge_patch(new, copy.deepcopy(patch))
    check_size(name, new)
    return changed, new, patch


class TwinService:
    def __init__(self, store: Store, registry: Registry, sessions: SessionRegistry,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.registry = registry
        self.sessions = sessions
        self.clock = clock
        # told of each change: (identity's row, the change as a twin notification's body, opType)
        self.change_listeners: list[Callable[[DeviceRow | ModuleRow, dict[str, Any], str], None]] = []

    # --- views -----------------------------------------------------------------------------
    @staticmethod
    def _section(twin: dict[str, Any], name: str, metadata: bool) -> dict[str, Any]:
        doc = copy.deepcopy(twin[name])
        if metadata:
            doc["$metadata"] = {"$lastUpdated": twin[name + "Updated"]}
        doc["$version"] = twin[name + "Version"]
        return doc

    def service_json(self, dev: DeviceRow | ModuleRow) -> dict[str, Any]:
        if isinstance(dev, ModuleRow):
            module = self.registry.module_json(dev)
            head = {"deviceId": dev.device_id, "moduleId": dev.module_id,
                    "etag": etag_of(dev.twin["version"]), "deviceEtag": module["etag"],
                    "status": "enabled", "connectionState": module["connectionState"],
                    "lastActivityTime": module["lastActivityTime"],
                    "cloudToDeviceMessageCount": 0}
            return {**head, **self._document(dev.twin)}
        device = self.registry.device_json(dev)
        head = {"deviceId": dev.device_id, "etag": etag_of(dev.twin["version"]),
                "deviceEtag": device["etag"], "status": dev.status,
                "statusUpdateTime": dev.status_updated, "connectionState": device["connectionState"],
                "lastActivityTime": device["lastActivityTime"],
                "cloudToDeviceMessageCount": device["cloudToDeviceMessageCount"]}
        return {**head, **self._document(dev.twin),
                "capabilities": {"iotEdge": bool(dev.twin.get("iotEdge"))}}

    def _document(self, twin: dict[str, Any]) -> dict[str, Any]:
        """What a device twin and a module twin share."""
        return {
            "authenticationType": "sas",
            "x509Thumbprint": {"primaryThumbprint": None, "secondaryThumbprint": None},
            "modelId": twin.get("modelId", ""),
            "version": twin["version"],
            "tags": copy.deepcopy(twin["tags"]),
            "properties": {
                "desired": self._section(twin, "desired", True),
                "reported": self._section(twin, "reported", True),
            },
        }

    def device_view(self, identity: str) -> dict[str, Any]:
        """What the device (or module) gets for ``$iothub/twin/GET``."""
        twin = self.registry.require_identity(identity).twin
        return {"desired": self._section(twin, "desired", False),
                "reported": self._section(twin, "reported", False)}

    def get(self, identity: str) -> dict[str, Any]:
        return self.service_json(self.registry.require_identity(identity))

    # --- back-end writes -------------------------------------------------------------------
    def update(self, identity: str, body: dict[str, Any], if_match: str | None,
               replace: bool = False) -> dict[str, Any]:
        """PATCH (merge) or PUT (replace) tags and desired properties."""
        dev = self.registry.require_identity(identity)
        twin = dev.twin
        if not if_match_ok(if_match, etag_of(twin["version"])):
            raise HubError(412, "PreconditionFailed", "twin etag does not match")
        tags = body.get("tags")
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise bad_request("properties must be an object")
        desired = props.get("desired")
        if props.get("reported"):
            raise bad_request("reported properties can only be written by the device")
        try:
            tags_changed, new_tags, _ = _write_section("tags", twin["tags"], tags, replace)
            desired_changed, new_desired, patch = _write_section("desired", twin["desired"], desired, replace)
        except TwinError as exc:
            raise _twin_error(exc) from exc
        now = self.clock()
        if tags_changed or desired_changed:
            twin["tags"] = new_tags
            twin["version"] += 1
        if desired_changed:
            twin["desired"] = new_desired
            twin["desiredVersion"] += 1
            twin["desiredUpdated"] = iso_now(now)
        if tags_changed or desired_changed:
            self.registry.save_identity(dev)
        if desired_changed:
            notice = dict(new_desired if replace else patch)
            notice["$version"] = twin["desiredVersion"]
            self._notify_desired(identity, notice)
        if tags_changed or desired_changed:
            change: dict[str, Any] = {"version": twin["version"]}
            if tags_changed:
                change["tags"] = copy.deepcopy(new_tags)
            if desired_changed:
                change["properties"] = {"desired": {
                    **copy.deepcopy(new_desired if replace else patch),
                    "$metadata": {"$lastUpdated": twin["desiredUpdated"]}, "$version": twin["desiredVersion"]}}
            self._changed(dev, change, "replaceTwin" if replace else "updateTwin")
        return self.service_json(dev)

    def _changed(self, dev: DeviceRow | ModuleRow, change: dict[str, Any], op_type: str) -> None:
        for listener in self.change_listeners:
            listener(dev, change, op_type)

    def _notify_desired(self, identity: str, notice: dict[str, Any]) -> None:
        session = self.sessions.get(identity)
        if session is None or SUB_DESIRED not in session.subscriptions:
            return  # IoT Hub only notifies connected, subscribed devices
        payload = json.dumps(notice, separators=(",", ":")).encode()
        session.publish(desired_patch_topic(notice["$version"]), payload,
                        session.subscriptions[SUB_DESIRED])

    # --- device writes ---------------------------------------------------------------------
    def patch_reported(self, identity: str, patch: dict[str, Any]) -> int:
        """Apply a device's reported patch; return the new reported ``$version``.

        Raises TwinError (status 400) for an invalid or oversized patch, leaving the twin as it was.
        """
        dev = self.registry.require_identity(identity)
        twin = dev.twin
        patch = validate_section(strip_read_only(patch), patch=True)
        reported = copy.deepcopy(twin["reported"])
        merge_patch(reported, patch)
        check_size("reported", reported)
        twin["reported"] = reported
        twin["reportedVersion"] += 1
        twin["version"] += 1
        twin["reportedUpdated"] = iso_now(self.clock())
        self.registry.save_identity(dev)
        self._changed(dev, {"version": twin["version"], "properties": {"reported": {
            **copy.deepcopy(patch), "$metadata": {"$lastUpdated": twin["reportedUpdated"]},
            "$version": twin["reportedVersion"]}}}, "updateTwin")
        return int(twin["reportedVersion"])
