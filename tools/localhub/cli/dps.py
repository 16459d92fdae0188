"""``localhub dps ...``: the provisioning service beside the hub (services/dps.py), in the
spirit of ``az iot dps``: its ID scope, symmetric-key enrollments and enrollment groups, the
registrations made. Works on the state folder, served or not (a serving hub reads enrollments at
each registration). Registered on the main group by main.py."""

from __future__ import annotations

from typing import Any

import click

from ..protocol import auth
from ..protocol.errors import HubError
from ..server import open_dps
from ..storage.dpsstore import Enrollment
from .output import console, print_json


def _json(e: Enrollment) -> dict[str, Any]:
    key = "enrollmentGroupId" if e.group else "registrationId"
    out: dict[str, Any] = {key: e.name, "attestation": {"type": "symmetricKey", "symmetricKey": {
        "primaryKey": e.primary_key, "secondaryKey": e.secondary_key}}}
    if e.device_id:
        out["deviceId"] = e.device_id
    return out


@click.group("dps")
def dps() -> None:
    """Device Provisioning: ID scope, enrollments, registrations (devices reach it over MQTT at
    the hub's address, with `provisioning_host` set to it)."""


@dps.command("id-scope")
@click.pass_obj
def id_scope(obj: Any) -> None:
    """The ID scope devices register in."""
    console.print(open_dps(obj.state_dir).id_scope)


def _enroll(obj: Any, name: str, group: bool, primary_key: str | None, device_id: str | None) -> None:
    try:
        print_json(_json(open_dps(obj.state_dir).enroll(name, group, primary_key, device_id=device_id)))
    except HubError as exc:
        raise click.ClickException(exc.message) from exc


@dps.group("enrollment")
def enrollment() -> None:
    """Individual enrollments (one device, its own symmetric key)."""


@enrollment.command("create")
@click.argument("registration_id")
@click.option("--primary-key", help="base64 (default: a new random key)")
@click.option("--device-id", help="The device id it gets at the hub (default: the registration id).")
@click.pass_obj
def enrollment_create(obj: Any, registration_id: str, primary_key: str | None, device_id: str | None) -> None:
    _enroll(obj, registration_id, False, primary_key, device_id)


@enrollment.command("list")
@click.pass_obj
def enrollment_list(obj: Any) -> None:
    print_json([_json(e) for e in open_dps(obj.state_dir).store.enrollments() if not e.group])


def _delete(obj: Any, name: str, group: bool) -> None:
    if not open_dps(obj.state_dir).store.delete_enrollment(name, group):
        raise click.ClickException(f"no {'enrollment group' if group else 'enrollment'} {name!r}")


@enrollment.command("delete")
@click.argument("registration_id")
@click.pass_obj
def enrollment_delete(obj: Any, registration_id: str) -> None:
    _delete(obj, registration_id, False)


@dps.group("enrollment-group")
def enrollment_group() -> None:
    """Enrollment groups: any registration id, each device's key derived from the group's."""


@enrollment_group.command("create")
@click.argument("group_id")
@click.option("--primary-key", help="base64 (default: a new random key)")
@click.pass_obj
def group_create(obj: Any, group_id: str, primary_key: str | None) -> None:
    _enroll(obj, group_id, True, primary_key, None)


@enrollment_group.command("list")
@click.pass_obj
def group_list(obj: Any) -> None:
    print_json([_json(e) for e in open_dps(obj.state_dir).store.groups()])


@enrollment_group.command("delete")
@click.argument("group_id")
@click.pass_obj
def group_delete(obj: Any, group_id: str) -> None:
    _delete(obj, group_id, True)


@enrollment_group.command("device-key")
@click.argument("group_id")
@click.argument("registration_id")
@click.pass_obj
def group_device_key(obj: Any, group_id: str, registration_id: str) -> None:
    """The key a device registering as REGISTRATION_ID in GROUP_ID signs with."""
    group = open_dps(obj.state_dir).store.group(group_id)
    if group is None:
        raise click.ClickException(f"no enrollment group {group_id!r}")
    console.print(auth.derive_device_key(group.primary_key, registration_id))


@dps.command("registrations")
@click.pass_obj
def registrations(obj: Any) -> None:
    """Every registration made, as DPS's registration states."""
    service = open_dps(obj.state_dir)
    print_json([service.state_json(r) for r in service.store.registrations()])
