"""A Device Provisioning Service beside the hub, as Azure's DPS behaves for one linked hub:
symmetric-key individual enrollments and enrollment groups, registration over MQTT
(endpoints/mqtt_dps.py), every device allocated to this hub.

- A device connects with client id = its registration id, user name
  ``{idScope}/registrations/{registrationId}/api-version=...`` and a SAS for
  ``{idScope}/registrations/{registrationId}`` signed with its enrollment's key, or for a group
  with the key derived from the group's (:func:`auth.derive_device_key`).
- ``register`` answers 202 ``assigning`` with an operation id and a retry-after; the operation,
  polled, answers 200 ``assigned`` with the registration state: this hub's host name and the
  device id (the enrollment's, else the registration id). The device is made in the registry
  with the key it registered with, so that key opens the hub too; a device that registers again
  keeps its identity (and twin) and gets its key set again.
- A Plug and Play model id in the registration payload (``{"modelId": "dtmi:..."}``) goes into
  the device twin's ``modelId``, as IoT Central's devices announce it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable

from ..protocol import auth
from ..protocol.errors import HubError, bad_request
from ..protocol.twin import iso_now
from ..storage.dpsstore import DpsStore, Enrollment, Registration
from .registry import Registry

RETRY_AFTER = 1  # seconds the device waits before polling its operation
OPERATION_KEPT = 600.0  # seconds an operation can still be polled (every register makes one)
API_VERSION = "2019-03-31"


class RegistrationRefused(Exception):
    pass


@dataclass
class Operation:
    operation_id: str
    registration_id: str
    ready_at: float
    state: dict[str, Any]


def check_registration_id(registration_id: str) -> None:
    """DPS: lowercase alphanumerics and ``-._:``, at most 128 characters."""
    if not registration_id or len(registration_id) > 128 or registration_id != registration_id.lower() \
            or any(not (c.isalnum() or c in "-._:") for c in registration_id):
        raise bad_request("a registration id is lowercase letters, digits and - . _ :, at most 128")


class DpsService:
    def __init__(self, store: DpsStore, registry: Registry | None, hub_host: str,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.registry = registry  # None for the CLI's offline use (enrollments only)
        self.hub_host = hub_host
        self.clock = clock
        self._operations: dict[str, Operation] = {}

    @property
    def id_scope(self) -> str:
        return self.store.id_scope()

    # --- enrollments -------------------------------------------------------------------------
    def enroll(self, name: str, group: bool, primary_key: str | None = None,
               secondary_key: str | None = None, device_id: str | None = None) -> Enrollment:
        if group:
            if not name or len(name) > 128:
                raise bad_request("a group id is 1 to 128 characters")
        else:
            check_registration_id(name)
        enrollment = Enrollment(name, primary_key or auth.new_key(), secondary_key or auth.new_key(),
                                device_id, self.clock(), group)
        for key in (enrollment.primary_key, enrollment.secondary_key):
            try:
                auth.derive_device_key(key, "check")
            except auth.AuthError as exc:
                raise bad_request("keys are base64") from exc
        if not self.store.add_enrollment(enrollment):
            raise HubError(409, "Conflict", f"{'group' if group else 'enrollment'} {name!r} exists")
        return enrollment

    # --- registration ------------------------------------------------------------------------
    def authenticate(self, client_id: str, username: str | None, password: bytes | None) -> tuple[str, str]:
        """(registration id, enrollment: "individual" or "group:{id}"). Raises RegistrationRefused."""
        parts = (username or "").split("/")
        if len(parts) < 3 or parts[1] != "registrations":
            raise RegistrationRefused("not a DPS user name")
        scope, registration_id = parts[0], parts[2]
        if scope != self.id_scope:
            raise RegistrationRefused(f"unknown ID scope {scope[:40]!r}")
        if registration_id != client_id:
            raise RegistrationRefused("the client id must be the registration id")
        token = (password or b"").decode("utf-8", "replace")
        now = self.clock()
        enrollment = self.store.enrollment(registration_id)
        candidates: list[tuple[str, list[str]]] = []
        if enrollment is not None:
            candidates.append(("individual", [enrollment.primary_key, enrollment.secondary_key]))
        for group in self.store.groups():
            candidates.append((f"group:{group.name}", [
                auth.derive_device_key(group.primary_key, registration_id),
                auth.derive_device_key(group.secondary_key, registration_id)]))
        if not candidates:
            raise RegistrationRefused(f"no enrollment for {registration_id[:60]!r}")
        last = "no enrollment's key signed the token"
        for kind, keys in candidates:
            try:
                auth.verify_registration_token(token, scope, registration_id, keys, now)
            except auth.AuthError as exc:
                last = str(exc)
                continue
            return registration_id, kind
        raise RegistrationRefused(last)

    def register(self, registration_id: str, enrollment: str, payload: Any) -> dict[str, Any]:
        """A register request: the operation to poll (``status: assigning``)."""
        now = self.clock()
        device_id, key = self._device_of(registration_id, enrollment)
        model_id = payload.get("modelId") if isinstance(payload, dict) else None
        previous = self.store.registration(registration_id)
        registration = Registration(
            registration_id, device_id, enrollment, self.hub_host,
            "initialAssignment" if previous is None else "deviceDataMigrated",
            previous.created if previous else now, now, (previous.etag_counter + 1) if previous else 1)
        self._allocate(device_id, key, model_id if isinstance(model_id, str) else None)
        self.store.save_registration(registration)
        operation = Operation(f"4.{uuid.uuid4().hex[:16]}.{uuid.uuid4()}", registration_id,
                              now + RETRY_AFTER, self.state_json(registration))
        # a device that registers at every boot must not grow the hub: old operations go
        for stale in [k for k, op in self._operations.items() if op.ready_at < now - OPERATION_KEPT]:
            del self._operations[stale]
        self._operations[operation.operation_id] = operation
        return {"operationId": operation.operation_id, "status": "assigning"}

    def operation_status(self, registration_id: str, operation_id: str) -> tuple[int, dict[str, Any]]:
        """(status code, body) of a poll: 202 assigning until its retry-after passed, then 200."""
        operation = self._operations.get(operation_id)
        if operation is None or operation.registration_id != registration_id:
            return 404, {"errorCode": 404201, "message": "Operation not found", "trackingId": str(uuid.uuid4())}
        if self.clock() < operation.ready_at:
            return 202, {"operationId": operation_id, "status": "assigning"}
        return 200, {"operationId": operation_id, "status": "assigned", "registrationState": operation.state}

    def state_json(self, r: Registration) -> dict[str, Any]:
        return {"registrationId": r.registration_id, "createdDateTimeUtc": iso_now(r.created),
                "assignedHub": r.assigned_hub, "deviceId": r.device_id, "status": "assigned",
                "substatus": r.substatus, "lastUpdatedDateTimeUtc": iso_now(r.updated),
                "etag": f'"{r.etag_counter:08x}"'}

    def _device_of(self, registration_id: str, enrollment: str) -> tuple[str, str]:
        if enrollment == "individual":
            individual = self.store.enrollment(registration_id)
            if individual is None:
                raise RegistrationRefused("the enrollment is gone")
            return individual.device_id or registration_id, individual.primary_key
        group_id = enrollment.partition(":")[2]
        group = self.store.group(group_id)
        if group is None:
            raise RegistrationRefused("the enrollment group is gone")
        return registration_id, auth.derive_device_key(group.primary_key, registration_id)

    def _allocate(self, device_id: str, key: str, model_id: str | None) -> None:
        if self.registry is None:
            raise RuntimeError("allocation needs the hub's registry")
        existing = self.registry.store.get_device(device_id)
        if existing is None:
            self.registry.create(device_id, primary_key=key)
        elif existing.primary_key != key:
            existing.primary_key = key
            self.registry.store.save_device(existing)
        if model_id:
            self.registry.record_model_id(device_id, model_id)
