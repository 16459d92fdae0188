"""The identity registry: devices and their module identities (CRUD, keys, status) and the
Device and Module JSON IoT Hub returns.

An *identity* names what connects and has a twin: a device id, or ``{device}/{module}``
(store.module_identity) for a module; sessions, twins and methods take identities."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any, Callable

from ..protocol.auth import new_key
from ..protocol.errors import HubError, bad_request, not_found
from ..protocol.twin import iso_now, new_twin
from ..storage.store import DeviceRow, ModuleRow, Store, StoreError, module_identity
from .sessions import SessionRegistry

# IoT Hub: up to 128 characters, ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ '.
# '/', '#' and '+' are excluded, which is what keeps device ids safe inside MQTT topics.
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$")
NEVER = "0001-01-01T00:00:00Z"


def check_device_id(device_id: str) -> None:
    if not DEVICE_ID_RE.match(device_id):
        raise bad_request(f"invalid device id {device_id[:64]!r}", "InvalidDeviceId")


def check_module_id(module_id: str) -> None:
    # IoT Hub also allows '+' and '#' in module ids; they are wildcards in MQTT topics, which
    # carry the module id, so the local hub takes only what a device id may hold.
    if not DEVICE_ID_RE.match(module_id):
        raise bad_request(f"invalid module id {module_id[:64]!r}", "ArgumentInvalid")


def _sas_authentication(primary_key: str, secondary_key: str) -> dict[str, Any]:
    return {"symmetricKey": {"primaryKey": primary_key, "secondaryKey": secondary_key},
            "x509Thumbprint": {"primaryThumbprint": None, "secondaryThumbprint": None},
            "type": "sas"}


def split_identity(identity: str) -> tuple[str, str | None]:
    device_id, sep, module_id = identity.partition("/")
    return device_id, (module_id if sep else None)


def _check_key(key: str) -> None:
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request("symmetric key is not base64") from exc
    if not 16 <= len(raw) <= 64:
        raise bad_request("symmetric key must be 16 to 64 bytes")


def etag_of(counter: int) -> str:
    return base64.b64encode(str(counter).encode()).decode()


def if_match_ok(header: str | None, etag: str) -> bool:
    """``If-Match`` absent or ``*`` matches anything; otherwise the quoted or bare etag.

    azure-iot-hub sends ``"*"`` quoted (its ``_ensure_quoted``), so quotes are stripped first.
    """
    if header is None:
        return True
    value = header.strip().strip('"')
    return value == "*" or value == etag


class Registry:
    def __init__(self, store: Store, sessions: SessionRegistry, clock: Callable[[], float],
                 c2d_count: Callable[[str], int]) -> None:
        self.store = store
        self.sessions = sessions
        self.clock = clock
        self._c2d_count = c2d_count
        # Kept in memory: writing a row per message would cost more than the message.
        self.connection_changed: dict[str, str] = {}  # device id -> ISO time of last change
        self.activity: dict[str, str] = {}  # device id -> ISO time of last message

    def require(self, device_id: str) -> DeviceRow:
        dev = self.store.get_device(device_id)
        if dev is None:
            raise not_found(device_id)
        return dev

    def create(self, device_id: str, primary_key: str | None = None,
               secondary_key: str | None = None, status: str = "enabled",
               status_reason: str | None = None, iot_edge: bool = False) -> DeviceRow:
        check_device_id(device_id)
        if status not in ("enabled", "disabled"):
            raise bad_request("status must be 'enabled' or 'disabled'")
        primary_key = primary_key or new_key()
        secondary_key = secondary_key or new_key()
        _check_key(primary_key)
        _check_key(secondary_key)
        now = self.clock()
        dev = DeviceRow(
            device_id=device_id, primary_key=primary_key, secondary_key=secondary_key,
            status=status, status_reason=status_reason, status_updated=iso_now(now),
            generation_id=str(uuid.uuid4().int)[:18], etag_counter=1, twin=new_twin(now),
            last_activity=None,
        )
        if iot_edge:
            dev.twin["iotEdge"] = True
        try:
            self.store.insert_device(dev)
        except StoreError as exc:
            raise HubError(409, "DeviceAlreadyExists", str(exc)) from exc
        return dev

    def put(self, device_id: str, body: dict[str, Any], if_match: str | None) -> DeviceRow:
        """PUT /devices/{id}: create, or update when ``If-Match`` is given (IoT Hub semantics)."""
        body_id = body.get("deviceId")
        if body_id is not None and body_id != device_id:
            raise bad_request("deviceId in the body does not match the URL")
        auth = body.get("authentication") or {}
        if auth.get("type") not in (None, "sas"):
            raise bad_request("only symmetric-key (sas) authentication is supported locally")
        sym = auth.get("symmetricKey") or {}
        status = body.get("status") or "enabled"
        capabilities = body.get("capabilities")
        if capabilities is not None and not isinstance(capabilities, dict):
            raise bad_request("capabilities must be an object")
        existing = self.store.get_device(device_id)
        if existing is None:
            return self.create(device_id, sym.get("primaryKey"), sym.get("secondaryKey"),
                               status, body.get("statusReason"), bool((capabilities or {}).get("iotEdge")))
        if if_match is None:
            raise HubError(409, "DeviceAlreadyExists", f"device {device_id!r} already exists")
        if not if_match_ok(if_match, etag_of(existing.etag_counter)):
            raise HubError(412, "PreconditionFailed", "etag does not match")
        if status not in ("enabled", "disabled"):
            raise bad_request("status must be 'enabled' or 'disabled'")
        for name in ("primaryKey", "secondaryKey"):
            if sym.get(name):
                _check_key(sym[name])
        existing.primary_key = sym.get("primaryKey") or existing.primary_key
        existing.secondary_key = sym.get("secondaryKey") or existing.secondary_key
        if status != existing.status:
            existing.status = status
            existing.status_updated = iso_now(self.clock())
        existing.status_reason = body.get("statusReason", existing.status_reason)
        if capabilities is not None:
            existing.twin["iotEdge"] = bool(capabilities.get("iotEdge"))
        existing.etag_counter += 1
        self.store.save_device(existing)
        if existing.status == "disabled":
            self.sessions.drop_device(device_id, "device disabled")
        return existing

    def delete(self, device_id: str, if_match: str | None = None) -> None:
        dev = self.require(device_id)
        if not if_match_ok(if_match, etag_of(dev.etag_counter)):
            raise HubError(412, "PreconditionFailed", "etag does not match")
        self.store.delete_device(device_id)
        self.sessions.drop_device(device_id, "device deleted")

    def list(self, top: int | None = None) -> list[DeviceRow]:
        return self.store.list_devices(top)

    def connection_state(self, device_id: str) -> str:
        return "Connected" if self.sessions.connected(device_id) else "Disconnected"

    def record_model_id(self, identity: str, model_id: str) -> None:
        """The Plug and Play model a device (or module) announced when it connected
        (``model-id`` in its MQTT user name): kept in its twin's ``modelId`` until it announces
        another."""
        row = self.find_identity(identity)
        if row is not None and row.twin.get("modelId") != model_id:
            row.twin["modelId"] = model_id
            self.save_identity(row)

    # --- identities: a device or one of its modules -------------------------------------------
    def find_identity(self, identity: str) -> DeviceRow | ModuleRow | None:
        device_id, module_id = split_identity(identity)
        if module_id is None:
            return self.store.get_device(device_id)
        return self.store.get_module(device_id, module_id)

    def require_identity(self, identity: str) -> DeviceRow | ModuleRow:
        row = self.find_identity(identity)
        if row is None:
            device_id, module_id = split_identity(identity)
            if module_id is None:
                raise not_found(device_id)
            raise HubError(404, "ModuleNotFound", f"module {module_id!r} of device {device_id!r} not found")
        return row

    def save_identity(self, row: DeviceRow | ModuleRow) -> None:
        if isinstance(row, ModuleRow):
            self.store.save_module(row)
        else:
            self.store.save_device(row)

    # --- modules ---------------------------------------------------------------------------
    def require_module(self, device_id: str, module_id: str) -> ModuleRow:
        row = self.require_identity(module_identity(device_id, module_id))
        assert isinstance(row, ModuleRow)
        return row

    def list_modules(self, device_id: str) -> list[ModuleRow]:
        self.require(device_id)
        return self.store.list_modules(device_id)

    def put_module(self, device_id: str, module_id: str, body: dict[str, Any],
                   if_match: str | None) -> ModuleRow:
        """PUT /devices/{id}/modules/{mid}: create, or update when ``If-Match`` is given."""
        self.require(device_id)
        check_module_id(module_id)
        for field, expected in (("deviceId", device_id), ("moduleId", module_id)):
            if body.get(field) not in (None, expected):
                raise bad_request(f"{field} in the body does not match the URL")
        auth = body.get("authentication") or {}
        if auth.get("type") not in (None, "sas"):
            raise bad_request("only symmetric-key (sas) authentication is supported locally")
        sym = auth.get("symmetricKey") or {}
        for name in ("primaryKey", "secondaryKey"):
            if sym.get(name):
                _check_key(sym[name])
        managed_by = body.get("managedBy")
        if managed_by is not None and not isinstance(managed_by, str):
            raise bad_request("managedBy must be a string")
        existing = self.store.get_module(device_id, module_id)
        if existing is None:
            now = self.clock()
            mod = ModuleRow(device_id=device_id, module_id=module_id,
                            primary_key=sym.get("primaryKey") or new_key(),
                            secondary_key=sym.get("secondaryKey") or new_key(),
                            managed_by=managed_by, generation_id=str(uuid.uuid4().int)[:18],
                            etag_counter=1, twin=new_twin(now))
            try:
                self.store.insert_module(mod)
            except StoreError as exc:
                raise HubError(409, "ModuleAlreadyExistsOnDevice", str(exc)) from exc
            return mod
        if if_match is None:
            raise HubError(409, "ModuleAlreadyExistsOnDevice",
                           f"module {module_id!r} already exists on device {device_id!r}")
        if not if_match_ok(if_match, etag_of(existing.etag_counter)):
            raise HubError(412, "PreconditionFailed", "etag does not match")
        existing.primary_key = sym.get("primaryKey") or existing.primary_key
        existing.secondary_key = sym.get("secondaryKey") or existing.secondary_key
        existing.managed_by = managed_by if "managedBy" in body else existing.managed_by
        existing.etag_counter += 1
        self.store.save_module(existing)
        return existing

    def delete_module(self, device_id: str, module_id: str, if_match: str | None = None) -> None:
        mod = self.require_module(device_id, module_id)
        if not if_match_ok(if_match, etag_of(mod.etag_counter)):
            raise HubError(412, "PreconditionFailed", "etag does not match")
        self.store.delete_module(device_id, module_id)
        self.sessions.drop(mod.identity, "module deleted")

    def module_json(self, mod: ModuleRow) -> dict[str, Any]:
        identity = mod.identity
        return {
            "moduleId": mod.module_id,
            "managedBy": mod.managed_by,
            "deviceId": mod.device_id,
            "generationId": mod.generation_id,
            "etag": etag_of(mod.etag_counter),
            "connectionState": self.connection_state(identity),
            "connectionStateUpdatedTime": self.connection_changed.get(identity, NEVER),
            "lastActivityTime": self.activity.get(identity) or NEVER,
            "cloudToDeviceMessageCount": 0,  # modules get no C2D
            "authentication": _sas_authentication(mod.primary_key, mod.secondary_key),
        }

    def mark_connection(self, device_id: str) -> None:
        self.connection_changed[device_id] = iso_now(self.clock())

    def touch(self, device_id: str) -> None:
        self.activity[device_id] = iso_now(self.clock())

    def device_json(self, dev: DeviceRow) -> dict[str, Any]:
        return {
            "deviceId": dev.device_id,
            "generationId": dev.generation_id,
            "etag": etag_of(dev.etag_counter),
            "connectionState": self.connection_state(dev.device_id),
            "status": dev.status,
            "statusReason": dev.status_reason,
            "connectionStateUpdatedTime": self.connection_changed.get(dev.device_id, NEVER),
            "statusUpdatedTime": dev.status_updated,
            "lastActivityTime": self.activity.get(dev.device_id) or dev.last_activity or NEVER,
            "cloudToDeviceMessageCount": self._c2d_count(dev.device_id),
            "authentication": _sas_authentication(dev.primary_key, dev.secondary_key),
            "capabilities": {"iotEdge": bool(dev.twin.get("iotEdge"))},
        }
