"""``localhub module ...``: module identities of a device, against the running hub or, before
the first ``serve``, the state folder. Registered on the main group by main.py; ``obj`` is
main.py's context object."""

from __future__ import annotations

from typing import Any

import click

from ..storage import state
from .output import console, print_json


def _registry_call(obj: Any, online: Any, offline: Any) -> Any:
    client = obj.client()
    if client is not None:
        return online(client)
    reg = obj.offline_registry()
    return offline(reg)


@click.group("module")
def module() -> None:
    """Module identities of a device (IoTHubModuleClient connects as one)."""


@module.command("create")
@click.argument("device_id")
@click.argument("module_id")
@click.pass_obj
def module_create(obj: Any, device_id: str, module_id: str) -> None:
    print_json(_registry_call(
        obj, lambda c: c.create_module(device_id, module_id),
        lambda r: r.module_json(r.put_module(device_id, module_id, {}, None))))


@module.command("list")
@click.argument("device_id")
@click.pass_obj
def module_list(obj: Any, device_id: str) -> None:
    modules = _registry_call(obj, lambda c: c.list_modules(device_id),
                             lambda r: [r.module_json(m) for m in r.list_modules(device_id)])
    for mod in modules:
        console.print(f"{mod['deviceId']}/{mod['moduleId']}\t{mod['connectionState']}",
                      highlight=False)


@module.command("delete")
@click.argument("device_id")
@click.argument("module_id")
@click.pass_obj
def module_delete(obj: Any, device_id: str, module_id: str) -> None:
    _registry_call(obj, lambda c: c.delete_module(device_id, module_id),
                   lambda r: r.delete_module(device_id, module_id))
    console.print(f"deleted {device_id}/{module_id}", highlight=False)


@module.command("connection-string")
@click.argument("device_id")
@click.argument("module_id")
@click.option("--secondary", is_flag=True, help="Use the secondary key.")
@click.option("--sdk", is_flag=True, help="Add GatewayHostName for the azure-iot-device SDK.")
@click.pass_obj
def module_connection_string(obj: Any, device_id: str, module_id: str, secondary: bool,
                             sdk: bool) -> None:
    mod = _registry_call(obj, lambda c: c.get_module(device_id, module_id),
                         lambda r: r.module_json(r.require_module(device_id, module_id)))
    keys = mod["authentication"]["symmetricKey"]
    host = obj.advertised_host()
    text = state.module_connection_string(host, device_id, module_id,
                                          keys["secondaryKey" if secondary else "primaryKey"])
    console.print(state.sdk_connection_string(text, host) if sdk else text, soft_wrap=True)
