"""Rights per IoT Hub's permission model: every policy against every route, token scope (`sr`),
the `device` policy on the device endpoints, and the official SDKs held to their policy's rights.

The expected rights are written here from "Control access to IoT Hub" (the reference docs), not
read from the hub's own tables: a route given the wrong right fails this test.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from azure.iot.device import IoTHubDeviceClient, Message
from azure.iot.device.exceptions import CredentialError
from azure.iot.hub import IoTHubRegistryManager
from localhub.client.hub_client import HubRequestError
from localhub.endpoints import dps_routes, job_routes, mqtt_websocket, rest, upload_routes
from localhub.endpoints.routing import ACCESS_KEY
from localhub.protocol import auth, rights
from localhub.protocol.mqtt_codec import CONNACK_NOT_AUTHORIZED
from localhub.protocol.rights import DEFAULT_POLICIES
from localhub.server import open_hub
from localhub.storage import state
from localhub.testing import HubProcess
from localhub_rawclient import RawClient
from msrest.exceptions import HttpOperationError

RR, RW, SC, DC = "RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"
# What each default policy grants (the docs' table of a new hub).
GRANTS = {"iothubowner": {RR, RW, SC, DC}, "service": {SC}, "device": {DC},
          "registryRead": {RR}, "registryReadWrite": {RR, RW}}

# (method, route, a request to it, the right it needs). Requests that change state aim at ids
# that do not exist, so a granted call answers 4xx-not-401 and the next policy sees the same hub.
ROUTE_TABLE: list[tuple[str, str, str, Any, str]] = [
    ("GET", "/devices", "/devices", None, RR),
    ("POST", "/devices", "/devices", [], RW),
    ("POST", "/devices/query", "/devices/query", {"query": "SELECT * FROM devices"}, SC),
    ("GET", "/devices/{id}", "/devices/rt-dev", None, RR),
    ("PUT", "/devices/{id}", "/devices/rt-new", {"deviceId": "other-id"}, RW),
    ("DELETE", "/devices/{id}", "/devices/rt-absent", None, RW),
    ("DELETE", "/devices/{id}/commands", "/devices/rt-dev/commands", None, SC),
    ("GET", "/twins/{id}", "/twins/rt-dev", None, SC),
    ("PATCH", "/twins/{id}", "/twins/rt-absent", {"tags": {"a": 1}}, SC),
    ("PUT", "/twins/{id}", "/twins/rt-absent", {"tags": {"a": 1}}, SC),
    ("POST", "/twins/{id}/methods", "/twins/rt-dev/methods",
     {"methodName": "m", "responseTimeoutInSeconds": 5, "connectTimeoutInSeconds": 0}, SC),
    ("GET", "/devices/{id}/modules", "/devices/rt-dev/modules", None, RR),
    ("GET", "/devices/{id}/modules/{mid}", "/devices/rt-dev/modules/rt-absent", None, RR),
    ("PUT", "/devices/{id}/modules/{mid}", "/devices/rt-absent/modules/m", {}, RW),
    ("DELETE", "/devices/{id}/modules/{mid}", "/devices/rt-dev/modules/rt-absent", None, RW),
    ("GET", "/twins/{id}/modules/{mid}", "/twins/rt-dev/modules/rt-absent", None, SC),
    ("PATCH", "/twins/{id}/modules/{mid}", "/twins/rt-dev/modules/rt-absent", {"tags": {"a": 1}}, SC),
    ("PUT", "/twins/{id}/modules/{mid}", "/twins/rt-dev/modules/rt-absent", {"tags": {"a": 1}}, SC),
    ("POST", "/twins/{id}/modules/{mid}/methods", "/twins/rt-dev/modules/rt-absent/methods",
     {"methodName": "m", "responseTimeoutInSeconds": 5}, SC),
    ("GET", "/statistics/devices", "/statistics/devices", None, RR),
    ("GET", "/statistics/service", "/statistics/service", None, SC),
    ("GET", "/jobs/v2/query", "/jobs/v2/query", None, SC),
    ("PUT", "/jobs/v2/{id}", "/jobs/v2/rt-job", {"type": "noSuchType"}, SC),
    ("GET", "/jobs/v2/{id}", "/jobs/v2/rt-absent", None, SC),
    ("POST", "/jobs/v2/{id}/cancel", "/jobs/v2/rt-absent/cancel", None, SC),
    ("POST", "/localhub/devices/{id}/messages/devicebound",
     "/localhub/devices/rt-absent/messages/devicebound", {"body": "x"}, SC),
    ("GET", "/localhub/telemetry", "/localhub/telemetry", None, SC),
    ("GET", "/localhub/uploads/notifications", "/localhub/uploads/notifications", None, SC),
    # Granted, this starts Azurite: only its refusals are sent (see the test).
    ("GET", "/localhub/storage", "/localhub/storage", None, SC),
]
PUBLIC_ROUTES = {("GET", "/localhub/info"), ("GET", "/localhub/ca.pem")}
# The device endpoints: a device token (or a DeviceConnect policy) in the request, or, for MQTT
# over WebSockets, in the CONNECT the socket then carries.
DEVICE_ROUTES = {("POST", "/devices/{id}/files"), ("POST", "/devices/{id}/files/notifications"),
                 ("POST", "/devices/{id}/files/notifications/{cid}"), ("GET", "/$iothub/websocket"),
                 # DPS: the registration's own SAS
                 ("PUT", "/{scope}/registrations/{rid}/register"),
                 ("GET", "/{scope}/registrations/{rid}/operations/{operation}")}


def _token(hub: HubProcess, policy: str, resource: str = "", ttl: int = 600) -> str:
    key = state.load_policies(hub.state_dir)[policy].key
    return auth.generate_sas(hub.host + resource, key, int(time.time()) + ttl, policy)


def _call(hub: HubProcess, method: str, path: str, body: Any, token: str) -> int:
    try:
        status, _, _ = hub.client.request(method, path, body, headers={"Authorization": token},
                                          params={"wait": 0} if path.endswith("telemetry") else None)
        return status
    except HubRequestError as exc:
        if exc.status == 401:
            assert exc.code == "IotHubUnauthorizedAccess"
        return exc.status


def test_the_table_names_every_route_the_hub_serves(tmp_path) -> None:
    hub = open_hub(tmp_path / "hub.sqlite3", frozenset({"h"}), {})
    try:
        app = rest.make_app(hub, {})
        served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
        assert set(app[ACCESS_KEY].values()) >= {rest.PUBLIC}
    finally:
        hub.close()
    served |= {(m, p) for m, p, _, _ in upload_routes.ROUTES} | {("GET", mqtt_websocket.PATH)}
    served |= {(m, p.replace("{scope:0ne[0-9A-Fa-f]+}", "{scope}")) for m, p, _, _ in dps_routes.ROUTES}
    table = {(m, route) for m, route, _, _, _ in ROUTE_TABLE}
    assert served == table | PUBLIC_ROUTES | DEVICE_ROUTES
    assert {(m, p) for m, p, _, _ in job_routes.ROUTES} <= table


def test_a_new_hub_has_iot_hubs_default_policies(module_hub: HubProcess) -> None:
    policies = state.load_policies(module_hub.state_dir)
    assert set(policies) == set(GRANTS) == set(DEFAULT_POLICIES)


@pytest.mark.parametrize("policy", sorted(GRANTS))
def test_each_policy_opens_exactly_the_routes_its_rights_grant(module_hub: HubProcess,
                                                                policy: str) -> None:
    try:
        module_hub.create_device("rt-dev")
    except HubRequestError as exc:
        assert exc.status == 409  # another parameter made it
    token = _token(module_hub, policy)
    wrong = []
    for method, route, path, body, need in ROUTE_TABLE:
        granted = need in GRANTS[policy]
        if granted and route == "/localhub/storage":
            continue
        status = _call(module_hub, method, path, body, token)
        if (status == 401) == granted:
            wrong.append(f"{method} {route}: {status} (needs {need})")
    assert not wrong, f"policy {policy}: " + "; ".join(wrong)


def test_a_route_without_a_right_is_refused_to_everyone(tmp_path) -> None:
    # A route added past add_route has no entry: the middleware refuses it even to iothubowner.
    import asyncio

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from localhub.protocol.rights import Policy, Right

    key = auth.new_key()
    hub = open_hub(tmp_path / "hub.sqlite3", frozenset({"h"}),
                   {"iothubowner": Policy("iothubowner", key, Right.ALL)})

    async def forgotten(request: web.Request) -> web.Response:
        return web.Response(text="open")

    async def scenario() -> tuple[int, int]:
        app = rest.make_app(hub, {})
        app.router.add_get("/forgotten", forgotten)
        async with TestClient(TestServer(app)) as client:
            token = auth.generate_sas("h", key, int(time.time()) + 60, "iothubowner")
            bare = await client.get("/forgotten", headers={"Authorization": token})
            known = await client.get("/statistics/devices?api-version=2021-04-12",
                                     headers={"Authorization": token})
            return bare.status, known.status

    try:
        assert asyncio.run(scenario()) == (401, 200)
    finally:
        hub.close()


def test_a_token_scoped_to_a_device_opens_only_that_devices_routes(module_hub: HubProcess) -> None:
    for device_id in ("sc-dev1", "sc-dev10", "sc-dev2"):
        module_hub.create_device(device_id)
    owner_dev1 = _token(module_hub, "iothubowner", "/devices/sc-dev1")
    assert _call(module_hub, "GET", "/devices/sc-dev1", None, owner_dev1) == 200
    assert _call(module_hub, "DELETE", "/devices/sc-dev1/commands", None, owner_dev1) == 200
    # segment by segment: dev1's scope is not a prefix of dev10
    for path in ("/devices/sc-dev2", "/devices/sc-dev10", "/devices", "/twins/sc-dev1",
                 "/statistics/devices"):
        assert _call(module_hub, "GET", path, None, owner_dev1) == 401, path
    assert _call(module_hub, "POST", "/devices/query", {"query": "SELECT * FROM devices"},
                 owner_dev1) == 401
    twins_dev1 = _token(module_hub, "service", "/twins/sc-dev1")
    assert _call(module_hub, "GET", "/twins/sc-dev1", None, twins_dev1) == 200
    assert _call(module_hub, "GET", "/twins/sc-dev2", None, twins_dev1) == 401
    # the hub's C2D route stands for /devices/{id}/messages/devicebound
    c2d_dev1 = _token(module_hub, "service", "/devices/sc-dev1")
    assert _call(module_hub, "POST", "/localhub/devices/sc-dev1/messages/devicebound",
                 {"body": "hi"}, c2d_dev1) == 200
    assert _call(module_hub, "POST", "/localhub/devices/sc-dev2/messages/devicebound",
                 {"body": "hi"}, c2d_dev1) == 401
    registry_wide = _token(module_hub, "registryRead", "/devices")
    assert _call(module_hub, "GET", "/devices", None, registry_wide) == 200
    assert _call(module_hub, "GET", "/devices/sc-dev2", None, registry_wide) == 200
    # a device's own key is DeviceConnect for itself: no service route opens with it
    device_token = auth.generate_sas(f"{module_hub.host}/devices/sc-dev1",
                                     module_hub.device_key("sc-dev1"),
                                     int(time.time()) + 600)
    assert _call(module_hub, "GET", "/devices/sc-dev1", None, device_token) == 401
    # the upload endpoint is a device endpoint: ServiceConnect does not open it
    assert _call(module_hub, "POST", "/devices/sc-dev1/files", {"blobName": "x"},
                 _token(module_hub, "service")) == 401
    expired = _token(module_hub, "iothubowner", ttl=-1)
    assert _call(module_hub, "GET", "/devices", None, expired) == 401


def test_the_device_policy_connects_any_device_within_its_scope(module_hub: HubProcess) -> None:
    module_hub.create_device("dp-dev1")
    module_hub.create_device("dp-dev2")
    cert = module_hub.ca_pem
    gateway = _token(module_hub, "device", "/devices/dp-dev1")
    client = IoTHubDeviceClient.create_from_sastoken(gateway, gateway_hostname=module_hub.host,
                                                     server_verification_cert=cert)
    client.connect()
    try:
        client.send_message(Message("via the device policy", message_id="dp-1"))
    finally:
        client.shutdown()
    seen = module_hub.client.read_telemetry(0, "dp-dev1", 5.0)[0]
    assert any(m["body"] == "via the device policy" for m in seen)

    def refused(token: str) -> None:
        client = IoTHubDeviceClient.create_from_sastoken(token, gateway_hostname=module_hub.host,
                                                         server_verification_cert=cert,
                                                         connection_retry=False)
        try:
            with pytest.raises(CredentialError):  # CONNACK 5, not some other failure
                client.connect()
        finally:
            client.shutdown()

    refused(_token(module_hub, "service", "/devices/dp-dev2"))  # ServiceConnect is not DeviceConnect
    # scoped to dev1, offered as dev2: the SDK takes the device id from the token's sr, so the
    # raw MQTT endpoint proves it (ClientId dp-dev2, a token for dp-dev1)
    assert _raw_connect(module_hub, "dp-dev2", gateway) == CONNACK_NOT_AUTHORIZED
    assert _raw_connect(module_hub, "dp-dev2", _token(module_hub, "device")) == 0  # hub-wide scope
    assert _raw_connect(module_hub, "dp-dev2", _token(module_hub, "registryReadWrite")) \
        == CONNACK_NOT_AUTHORIZED


def _raw_connect(hub: HubProcess, device_id: str, token: str) -> int:
    client = RawClient(hub.host, hub.mqtt_port, str(hub.ca_path))
    try:
        connack = client.connect(device_id, f"{hub.host}/{device_id}/?api-version=2021-04-12",
                                 token)
        assert connack is not None
        return connack.return_code
    finally:
        client.sock.close()


def test_the_service_sdk_is_held_to_its_policys_rights(module_hub: HubProcess,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(module_hub.ca_path))
    module_hub.create_device("sdk-rights")

    def manager(policy: str) -> IoTHubRegistryManager:
        return IoTHubRegistryManager.from_connection_string(
            module_hub.policy_connection_string(policy))

    def status_of(call) -> int:
        try:
            call()
            return 200
        except HttpOperationError as exc:
            return exc.response.status_code

    reader, writer, service = manager("registryRead"), manager("registryReadWrite"), manager("service")
    assert reader.get_device("sdk-rights").device_id == "sdk-rights"
    assert status_of(lambda: reader.create_device_with_sas("sdk-r-new", None, None, "enabled")) == 401
    assert status_of(lambda: reader.get_twin("sdk-rights")) == 401
    assert writer.create_device_with_sas("sdk-rw-new", None, None, "enabled").device_id == "sdk-rw-new"
    writer.delete_device("sdk-rw-new")
    assert status_of(lambda: writer.get_twin("sdk-rights")) == 401
    assert service.get_twin("sdk-rights").device_id == "sdk-rights"
    assert status_of(lambda: service.get_device("sdk-rights")) == 401
    assert status_of(lambda: service.delete_device("sdk-rights")) == 401
    assert reader.get_device("sdk-rights").device_id == "sdk-rights"  # still there


def test_a_state_folder_from_before_rights_keeps_its_keys_and_gains_the_defaults(tmp_path) -> None:
    old = {"iothubowner": auth.new_key(), "service": auth.new_key(),
           "registryReadWrite": auth.new_key(), "ops": auth.new_key()}
    (tmp_path / state.HUB_JSON).write_text(json.dumps({"policies": old}))
    policies = state.load_policies(tmp_path)
    assert {name: p.key for name, p in policies.items() if name in old} == old
    assert {name: rights.format_rights(p.rights) for name, p in policies.items()} == {
        "iothubowner": "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect",
        "service": "ServiceConnect", "device": "DeviceConnect", "registryRead": "RegistryRead",
        "registryReadWrite": "RegistryRead, RegistryWrite",
        "ops": ""}  # a policy of its own with no rights written grants nothing
    assert state.load_policies(tmp_path) == policies  # written out: the same keys next time
    saved = json.loads((tmp_path / state.HUB_JSON).read_text())
    saved["rights"]["ops"] = "RegistryRead, ServiceConnect"
    (tmp_path / state.HUB_JSON).write_text(json.dumps(saved))
    assert state.load_policies(tmp_path)["ops"].rights == \
        rights.Right.REGISTRY_READ | rights.Right.SERVICE_CONNECT
    saved["rights"]["ops"] = "Everything"
    (tmp_path / state.HUB_JSON).write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="unknown right 'Everything'"):
        state.load_policies(tmp_path)
