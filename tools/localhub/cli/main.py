"""``localhub``: the command line, in the spirit of ``az iot hub``.

Commands talk to the running hub of the state folder over HTTPS (service SAS from the folder),
or to the folder's SQLite store directly when no hub is running and that makes sense (create,
list, show and delete devices, print connection strings, make SAS tokens, print the CA).
The state folder comes from ``--state`` or ``LOCALHUB_STATE`` (default ``~/.localhub``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..client import eventhub_reader
from ..client.hub_client import HubClient, HubNotRunning, HubRequestError
from ..endpoints.amqp import AUTH_TIMEOUT as AMQP_AUTH_TIMEOUT
from ..endpoints.https_gate import BODY_TIMEOUT, HEAD_TIMEOUT
from ..endpoints.mqtt import MAX_UNAUTHENTICATED
from ..protocol import auth
from ..protocol.errors import HubError
from ..protocol.rights import Policy, format_rights
from ..server import ServeConfig, hub_names, open_consumer_groups, open_offline_registry, serve
from ..services import routes, uploads
from ..services.registry import Registry
from ..storage import blob, certs, state
from ..support import logcap
from . import dps as dps_cli
from . import jobs as job_cli
from . import modules as module_cli
from . import uploads as upload_cli
from .output import console, json_option, print_json

err_console = Console(stderr=True, highlight=False)


class Ctx:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def client(self) -> HubClient | None:
        try:
            return HubClient.from_state(self.state_dir)
        except HubNotRunning:
            return None

    def require_client(self) -> HubClient:
        client = self.client()
        if client is None:
            raise click.ClickException(f"no hub is running for {self.state_dir}; "
                                       "start one with `localhub serve`")
        return client

    def offline_registry(self) -> Registry:
        return open_offline_registry(self.state_dir)

    def advertised_host(self) -> str:
        runtime = state.read_runtime(self.state_dir)
        if runtime is not None:
            return runtime.advertised_host
        return hub_names(ServeConfig(self.state_dir))[0]

    def device_keys(self, device_id: str) -> dict[str, Any]:
        client = self.client()
        if client is not None:
            return client.get_device(device_id)["authentication"]["symmetricKey"]
        dev = self.offline_registry().require(device_id)
        return {"primaryKey": dev.primary_key, "secondaryKey": dev.secondary_key}


def _props(values: tuple[str, ...]) -> dict[str, str]:
    props = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"property {item!r} is not key=value")
        props[key] = value
    return props


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HubRequestError as exc:
            raise click.ClickException(str(exc)) from exc
        except HubError as exc:
            raise click.ClickException(f"{exc.status} {exc.code}: {exc.message}") from exc
        except ConnectionError as exc:
            raise click.ClickException(f"cannot reach the hub: {exc}") from exc


@click.group(cls=_Group)
@click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="LOCALHUB_STATE", default=Path.home() / ".localhub", show_default=True,
              help="State folder (devices, keys, CA, SQLite).")
@click.pass_context
def main(ctx: click.Context, state_dir: Path) -> None:
    """A local Azure IoT Hub: MQTT + HTTPS, registry, twins, methods, C2D, telemetry."""
    ctx.obj = Ctx(state_dir)


@main.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True, help="Listen address.")
@click.option("--mqtt-port", default=8883, show_default=True, type=int)
@click.option("--amqp-port", default=5671, show_default=True, type=int,
              help="The Event Hub-compatible endpoint (AMQP over TLS).")
@click.option("--https-port", default=443, show_default=True, type=int)
@click.option("--hub-name", default=None, help="HostName put in connection strings "
              "(default: the listen address, or the LAN address when listening on all).")
@click.option("--name", "extra_names", multiple=True, help="Extra DNS name or IP for the certificate.")
@click.option("--storage-connection-string", envvar="LOCALHUB_STORAGE_CONNECTION_STRING",
              default=None, help="Azure storage account for file upload (default: Azurite, "
              "started by the hub on first use).")
@click.option("--storage-container", default=blob.DEFAULT_CONTAINER, show_default=True)
@click.option("--upload-sas-ttl", default=uploads.DEFAULT_SAS_TTL, show_default=True,
              type=click.IntRange(min=1), help="Lifetime of file-upload SAS URIs, in seconds.")
@click.option("--max-unauthenticated", default=MAX_UNAUTHENTICATED, show_default=True,
              type=click.IntRange(min=1), help="Connections nobody has authenticated on yet "
              "that each listener holds at once (MQTT: before CONNECT; HTTPS: before a request "
              "with a valid token; AMQP: before a CBS token); past that the longest waiting is "
              "closed for a newcomer.")
@click.option("--head-timeout", default=HEAD_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0.1), help="Seconds an HTTPS client has from connecting "
              "to a whole first request head.")
@click.option("--body-timeout", default=BODY_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0.1), help="Seconds an HTTPS client has to send a "
              "request body (408 after).")
@click.option("--amqp-auth-timeout", default=AMQP_AUTH_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0.1), help="Seconds an AMQP client has from connecting "
              "to a CBS token the hub accepts.")
@click.option("--route", "route_sources", multiple=True, type=click.Choice(routes.SOURCES),
              help="Also route this source's events to the Event Hub-compatible endpoint (as an "
                   "IoT Hub route to 'events' does).")
@click.option("-v", "--verbose", is_flag=True)
@click.pass_obj
def serve_cmd(obj: Ctx, host: str, mqtt_port: int, amqp_port: int, https_port: int, hub_name: str | None,
              extra_names: tuple[str, ...], storage_connection_string: str | None,
              storage_container: str, upload_sas_ttl: int, max_unauthenticated: int,
              head_timeout: float, body_timeout: float, amqp_auth_timeout: float,
              route_sources: tuple[str, ...], verbose: bool) -> None:
    """Run the hub until interrupted."""
    try:
        blob.check_container_name(storage_container)
        if storage_connection_string:
            blob.parse_storage_connection_string(storage_connection_string)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        logcap.install(handler)  # a flood of failing clients must not flood the log
    logging.getLogger("localhub").setLevel(logging.INFO)
    serve(ServeConfig(obj.state_dir, host, mqtt_port, https_port, hub_name, list(extra_names),
                      storage_connection_string, storage_container, upload_sas_ttl, max_unauthenticated,
                      head_timeout, body_timeout, amqp_port, frozenset(route_sources),
                      amqp_auth_timeout))


@main.group()
def device() -> None:
    """Device identities."""


@device.command("create")
@click.argument("device_id")
@click.option("--primary-key")
@click.option("--secondary-key")
@click.option("--disabled", is_flag=True)
@click.pass_obj
def device_create(obj: Ctx, device_id: str, primary_key: str | None, secondary_key: str | None,
                  disabled: bool) -> None:
    """Register a device (works with or without a running hub)."""
    status = "disabled" if disabled else "enabled"
    client = obj.client()
    if client is not None:
        data = client.create_device(device_id, primary_key, secondary_key, status)
    else:
        reg = obj.offline_registry()
        data = reg.device_json(reg.create(device_id, primary_key, secondary_key, status))
    print_json(data)


@device.command("list")
@click.pass_obj
def device_list(obj: Ctx) -> None:
    client = obj.client()
    if client is not None:
        devices = client.list_devices()
    else:
        reg = obj.offline_registry()
        devices = [reg.device_json(d) for d in reg.list()]
    for dev in devices:
        console.print(f"{dev['deviceId']}\t{dev['status']}\t{dev['connectionState']}")


@device.command("show")
@click.argument("device_id")
@click.pass_obj
def device_show(obj: Ctx, device_id: str) -> None:
    client = obj.client()
    if client is not None:
        print_json(client.get_device(device_id))
    else:
        reg = obj.offline_registry()
        print_json(reg.device_json(reg.require(device_id)))


@device.command("delete")
@click.argument("device_id")
@click.pass_obj
def device_delete(obj: Ctx, device_id: str) -> None:
    client = obj.client()
    if client is not None:
        client.delete_device(device_id)
    else:
        obj.offline_registry().delete(device_id)
    console.print(f"deleted {device_id}")


@device.command("connection-string")
@click.argument("device_id")
@click.option("--secondary", is_flag=True, help="Use the secondary key.")
@click.option("--sdk", is_flag=True, help="Add GatewayHostName for the azure-iot-device SDK.")
@click.pass_obj
def device_connection_string(obj: Ctx, device_id: str, secondary: bool, sdk: bool) -> None:
    keys = obj.device_keys(device_id)
    host = obj.advertised_host()
    text = state.device_connection_string(host, device_id,
                                          keys["secondaryKey" if secondary else "primaryKey"])
    console.print(state.sdk_connection_string(text, host) if sdk else text, soft_wrap=True)


def _policy(obj: Ctx, name: str) -> Policy:
    policies = state.load_policies(obj.state_dir)
    if name not in policies:
        raise click.BadParameter(f"unknown policy {name!r}; `localhub policies` lists them")
    return policies[name]


@main.command("connection-string")
@click.option("--policy", default=state.OWNER_POLICY, show_default=True,
              help="Shared access policy (its rights only: `localhub policies`).")
@click.pass_obj
def service_connection_string(obj: Ctx, policy: str) -> None:
    """A service connection string, for azure-iot-hub."""
    runtime = state.read_runtime(obj.state_dir)
    port = runtime.https_port if runtime else 443
    key = _policy(obj, policy).key
    console.print(state.service_connection_string(obj.advertised_host(), port, key, policy),
                  soft_wrap=True)


@main.group()
def eventhub() -> None:
    """The Event Hub-compatible endpoint, where azure-eventhub reads the telemetry."""


@eventhub.command("connection-string")
@click.option("--policy", default="service", show_default=True,
              help="A policy that grants ServiceConnect.")
@click.pass_obj
def eventhub_connection_string(obj: Ctx, policy: str) -> None:
    """For EventHubConsumerClient.from_connection_string (trust the hub's CA: `localhub ca`)."""
    runtime = state.read_runtime(obj.state_dir)
    port = runtime.amqp_port if runtime else 5671
    console.print(state.eventhub_connection_string(obj.advertised_host(), port, policy,
                                                   _policy(obj, policy).key), soft_wrap=True)


@eventhub.group("consumer-group")
def consumer_group() -> None:
    """Consumer groups beside $Default (as `az iot hub consumer-group`)."""


@consumer_group.command("create")
@click.argument("name")
@click.pass_obj
def consumer_group_create(obj: Ctx, name: str) -> None:
    open_consumer_groups(obj.state_dir).create(name)
    console.print(f"created {name}", highlight=False)


@consumer_group.command("list")
@click.pass_obj
def consumer_group_list(obj: Ctx) -> None:
    for name in open_consumer_groups(obj.state_dir).names():
        console.print(name, highlight=False)


@consumer_group.command("delete")
@click.argument("name")
@click.pass_obj
def consumer_group_delete(obj: Ctx, name: str) -> None:
    open_consumer_groups(obj.state_dir).delete(name)
    console.print(f"deleted {name}", highlight=False)


@main.command("policies")
@click.pass_obj
def list_policies(obj: Ctx) -> None:
    """Shared access policies and the rights each grants (keys stay in hub.json)."""
    for policy in state.load_policies(obj.state_dir).values():
        console.print(f"{policy.name:<18} {format_rights(policy.rights) or '-'}", soft_wrap=True,
                      highlight=False)


@main.command("sas")
@click.option("--device", "device_id", help="Device token (default: service token).")
@click.option("--ttl", default=3600, show_default=True, type=int, help="Lifetime in seconds.")
@click.option("--policy", help="Sign with this policy (default: the device's key, or "
              f"{state.OWNER_POLICY} for a service token).")
@click.option("--scope", default="", help="Narrow a policy token to a path, e.g. /devices/dev1.")
@click.pass_obj
def sas(obj: Ctx, device_id: str | None, ttl: int, policy: str | None, scope: str) -> None:
    """Generate a SAS token for a device or a shared access policy.

    With --device and --policy: a device-scoped token signed by a policy granting DeviceConnect
    (the token-service pattern)."""
    host = obj.advertised_host()
    expiry = int(time.time()) + ttl
    if device_id and policy is None:
        key = obj.device_keys(device_id)["primaryKey"]
        token = auth.generate_sas(f"{host}/devices/{device_id}", key, expiry)
    else:
        name = policy or state.OWNER_POLICY
        path = f"/devices/{device_id}" if device_id else scope
        if path and not path.startswith("/"):
            raise click.BadParameter("a scope is a path: /devices/dev1")
        token = auth.generate_sas(host + path.rstrip("/"), _policy(obj, name).key, expiry, name)
    console.print(token, soft_wrap=True)


@main.command("monitor")
@click.option("--device", "device_id", help="Only this device.")
@click.option("--from-start", is_flag=True, help="Also print messages already received.")
@click.option("--count", type=int, default=0, help="Stop after this many messages (0: never).")
@click.option("--timeout", type=float, default=0, help="Stop after this many seconds (0: never).")
@click.option("--consumer-group", default="$Default", show_default=True,
              help="The consumer group to read in.")
@click.option("--eventhub", "eventhub_cs", metavar="CONNECTION_STRING",
              help="Another Event Hub-compatible endpoint (an Azure IoT Hub's built-in endpoint); "
                   "default: this hub's.")
@click.option("--ca", "ca_path", type=click.Path(exists=True, dir_okay=False),
              help="The CA to trust for --eventhub (default: the system's).")
@click.pass_obj
def monitor(obj: Ctx, device_id: str | None, from_start: bool, count: int, timeout: float,
            consumer_group: str, eventhub_cs: str | None, ca_path: str | None) -> None:
    """Stream telemetry with its properties, one JSON object per message, read from the Event
    Hub-compatible endpoint as a back end reads it (partition, offset and sequence number too)."""
    if eventhub_cs is None:
        runtime = state.read_runtime(obj.state_dir)
        if runtime is None:
            raise click.ClickException(f"no hub is running for {obj.state_dir}; "
                                       "start one with `localhub serve`")
        eventhub_cs = state.eventhub_connection_string(obj.advertised_host(), runtime.amqp_port,
                                                       "service", _policy(obj, "service").key)
        ca_path = str(obj.state_dir / certs.CA_CERT)
    seen = 0

    def show(event: dict[str, Any]) -> bool:
        nonlocal seen
        if device_id is not None and event["deviceId"] != device_id:
            return True
        console.print(json.dumps(event), soft_wrap=True)
        seen += 1
        return not count or seen < count

    try:
        eventhub_reader.read_events(eventhub_cs, show, ca_path=ca_path, consumer_group=consumer_group,
                                    from_start=from_start, timeout=timeout)
    except eventhub_reader.EventHubError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        return


@main.group()
def method() -> None:
    """Direct methods."""


@method.command("invoke")
@click.argument("device_id")
@click.argument("name")
@click.option("--payload", default=None, help="JSON payload.")
@click.option("--timeout", default=30, show_default=True, type=int)
@click.pass_obj
def method_invoke(obj: Ctx, device_id: str, name: str, payload: str | None, timeout: int) -> None:
    result = obj.require_client().invoke_method(device_id, name, json_option(payload, "payload"),
                                                timeout)
    print_json(result)


@main.group()
def twin() -> None:
    """Device twins."""


@twin.command("show")
@click.argument("device_id")
@click.pass_obj
def twin_show(obj: Ctx, device_id: str) -> None:
    print_json(obj.require_client().get_twin(device_id))


@twin.command("update")
@click.argument("device_id")
@click.option("--desired", help="JSON patch of desired properties (null deletes).")
@click.option("--tags", help="JSON patch of tags (null deletes).")
@click.pass_obj
def twin_update(obj: Ctx, device_id: str, desired: str | None, tags: str | None) -> None:
    patch: dict[str, Any] = {}
    if desired is not None:
        patch["properties"] = {"desired": json_option(desired, "--desired")}
    if tags is not None:
        patch["tags"] = json_option(tags, "--tags")
    if not patch:
        raise click.UsageError("give --desired and/or --tags")
    print_json(obj.require_client().update_twin(device_id, patch))


@main.group()
def c2d() -> None:
    """Cloud-to-device messages."""


@c2d.command("send")
@click.argument("device_id")
@click.argument("body")
@click.option("--prop", "props", multiple=True, help="Property key=value (repeatable).")
@click.option("--message-id")
@click.option("--ttl", type=int, help="Time to live in seconds (default 3600).")
@click.pass_obj
def c2d_send(obj: Ctx, device_id: str, body: str, props: tuple[str, ...], message_id: str | None,
             ttl: int | None) -> None:
    mid = obj.require_client().send_c2d(device_id, body, _props(props), message_id, ttl)
    console.print(f"queued {mid}")


main.add_command(dps_cli.dps)  # `localhub dps id-scope | enrollment | enrollment-group | registrations`
main.add_command(module_cli.module)  # `localhub module create | list | delete | connection-string`
main.add_command(upload_cli.upload)  # `localhub upload notifications | storage`
main.add_command(job_cli.job)  # `localhub job create | show | list | cancel`
main.add_command(job_cli.query_cmd)  # `localhub query "SELECT ... FROM devices ..."`


@main.command("ca")
@click.option("--export", "export_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the CA certificate (PEM) to this file instead of printing it.")
@click.pass_obj
def ca(obj: Ctx, export_path: Path | None) -> None:
    """Print or export the CA certificate clients must trust."""
    cert_path, _ = certs.ensure_ca(obj.state_dir)
    pem = cert_path.read_text()
    if export_path:
        export_path.write_text(pem)
        err_console.print(f"wrote {export_path}")
    else:
        sys.stdout.write(pem)
