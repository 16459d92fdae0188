"""The official Azure SDKs, unchanged, against a local hub over TLS.

azure-iot-device (device side, MQTT on 8883) and azure-iot-hub (service side, HTTPS) must both
work with nothing but connection strings and the hub's CA.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
from pathlib import Path

import pytest
from azure.iot.device import IoTHubDeviceClient, Message, MethodResponse
from azure.iot.hub import IoTHubConfigurationManager, IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod, QuerySpecification, Twin, TwinProperties
from localhub.testing import HubProcess
from msrest.exceptions import HttpOperationError

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture
def registry(module_hub: HubProcess, monkeypatch: pytest.MonkeyPatch) -> IoTHubRegistryManager:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(module_hub.ca_path))
    return IoTHubRegistryManager.from_connection_string(module_hub.service_connection_string)


@pytest.fixture(params=["mqtt", "websockets"])
def sdk_device(module_hub: HubProcess, request: pytest.FixtureRequest):
    """The SDK's device over MQTT on 8883, and over MQTT over WebSockets on 443
    (``/$iothub/websocket``): every scenario that takes it runs over both."""
    websockets = request.param == "websockets"
    device_id = ("sdk-ws-" if websockets else "sdk-") + request.node.originalname.replace("_", "-")[:40]
    cs = module_hub.create_device(device_id)
    client = IoTHubDeviceClient.create_from_connection_string(
        module_hub.sdk_connection_string(cs), server_verification_cert=module_hub.ca_pem,
        websockets=websockets)
    client.connect()
    yield device_id, client
    client.shutdown()


def test_telemetry_with_properties_seen_by_monitor(module_hub: HubProcess, sdk_device) -> None:
    device_id, client = sdk_device
    msg = Message('{"temp": 21.5}', message_id="m-1", content_encoding="utf-8",
                  content_type="application/json")
    msg.custom_properties["alert"] = "high temp"
    msg.custom_properties["unit"] = "C&F=?"
    client.send_message(msg)
    out = subprocess.run(
        [sys.executable, "-m", "localhub", "--state", str(module_hub.state_dir), "monitor",
         "--device", device_id, "--from-start", "--count", "1", "--timeout", "15"],
        capture_output=True, text=True, timeout=30, env={"PYTHONPATH": str(TOOLS), "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[0])
    assert seen["deviceId"] == device_id
    assert json.loads(seen["body"]) == {"temp": 21.5}
    assert seen["properties"] == {"alert": "high temp", "unit": "C&F=?"}
    assert seen["systemProperties"]["message-id"] == "m-1"
    assert seen["systemProperties"]["content-type"] == "application/json"
    assert seen["systemProperties"]["content-encoding"] == "utf-8"


def test_c2d_with_properties_queued_before_subscribe(module_hub: HubProcess, sdk_device) -> None:
    device_id, client = sdk_device
    # Sent while the device has no C2D subscription: held, then delivered when it subscribes.
    module_hub.send_c2d(device_id, "switch on", {"cmd": "relay", "level": "50%"}, message_id="c-1")
    received: queue.Queue = queue.Queue()
    client.on_message_received = received.put
    msg = received.get(timeout=15)
    assert msg.data == b"switch on"
    assert msg.custom_properties == {"cmd": "relay", "level": "50%"}
    assert msg.message_id == "c-1"
    assert module_hub.client.get_device(device_id)["cloudToDeviceMessageCount"] == 0


def test_twin_get_reported_desired(module_hub: HubProcess, sdk_device, registry) -> None:
    device_id, client = sdk_device
    twin = client.get_twin()
    assert twin["desired"]["$version"] == 1 and twin["reported"]["$version"] == 1
    client.patch_twin_reported_properties({"fw": "1.0", "battery": {"level": 80}})
    service_twin = registry.get_twin(device_id)
    assert service_twin.properties.reported["fw"] == "1.0"
    assert service_twin.properties.reported["battery"] == {"level": 80}
    assert service_twin.properties.reported["$version"] == 2

    patches: queue.Queue = queue.Queue()
    client.on_twin_desired_properties_patch_received = patches.put
    plant = "Redmond43-" + device_id  # each transport's device its own: the query finds one
    updated = registry.update_twin(device_id, Twin(
        tags={"location": {"plant": plant}},
        properties=TwinProperties(desired={"interval": 5, "mode": {"eco": True}})))
    assert updated.tags == {"location": {"plant": plant}}
    patch = patches.get(timeout=15)
    assert patch == {"interval": 5, "mode": {"eco": True}, "$version": 2}

    # null deletes; the device sees the null in the patch
    registry.update_twin(device_id, Twin(properties=TwinProperties(desired={"mode": None})))
    assert patches.get(timeout=15) == {"mode": None, "$version": 3}
    assert client.get_twin()["desired"] == {"interval": 5, "$version": 3}

    result = registry.query_iot_hub(QuerySpecification(
        query=f"SELECT * FROM devices WHERE tags.location.plant = '{plant}' "
              "AND properties.reported.fw = '1.0'"))
    assert [t.device_id for t in result.items] == [device_id]
    assert result.type == "twin"


def test_direct_method_through_registry_manager(module_hub: HubProcess, sdk_device,
                                                registry) -> None:
    device_id, client = sdk_device

    def handler(request):
        status = 200 if request.name == "reboot" else 404
        client.send_method_response(MethodResponse.create_from_method_request(
            request, status, {"got": request.payload, "name": request.name}))

    client.on_method_request_received = handler
    result = registry.invoke_device_method(device_id, CloudToDeviceMethod(
        method_name="reboot", payload={"delay": 3}, response_timeout_in_seconds=10))
    assert result.status == 200
    assert result.payload == {"got": {"delay": 3}, "name": "reboot"}
    result = registry.invoke_device_method(device_id, CloudToDeviceMethod(
        method_name="nope", payload=None, response_timeout_in_seconds=10))
    assert result.status == 404


def test_method_to_offline_device_is_404(module_hub: HubProcess, registry) -> None:
    module_hub.create_device("sdk-offline")
    with pytest.raises(HttpOperationError) as err:
        registry.invoke_device_method("sdk-offline", CloudToDeviceMethod(
            method_name="reboot", payload={}, response_timeout_in_seconds=5))
    assert err.value.response.status_code == 404


def test_a_method_waits_connect_timeout_for_an_offline_device(module_hub: HubProcess, registry) -> None:
    import threading
    import time

    cs = module_hub.create_device("sdk-late")
    client = IoTHubDeviceClient.create_from_connection_string(
        module_hub.sdk_connection_string(cs), server_verification_cert=module_hub.ca_pem)

    def come_online() -> None:
        time.sleep(2)
        # Setting a handler connects the SDK and subscribes it to methods.
        client.on_method_request_received = lambda request: client.send_method_response(
            MethodResponse.create_from_method_request(request, 200, {"late": True}))

    started = time.monotonic()
    threading.Thread(target=come_online, daemon=True).start()
    try:
        result = registry.invoke_device_method("sdk-late", CloudToDeviceMethod(
            method_name="wake", payload={}, response_timeout_in_seconds=10, connect_timeout_in_seconds=20))
        assert result.status == 200 and result.payload == {"late": True}
        assert time.monotonic() - started >= 2  # it waited for the device
    finally:
        client.shutdown()
    with pytest.raises(HttpOperationError) as err:  # IoT Hub's range is 0..300
        registry.invoke_device_method("sdk-late", CloudToDeviceMethod(
            method_name="wake", payload={}, response_timeout_in_seconds=10, connect_timeout_in_seconds=301))
    assert err.value.response.status_code == 400


def test_registry_crud_and_paged_query(module_hub: HubProcess, registry) -> None:
    created = registry.create_device_with_sas("sdk-crud", "", "", "enabled")
    assert created.device_id == "sdk-crud" and created.authentication.symmetric_key.primary_key
    dev = registry.get_device("sdk-crud")
    assert dev.connection_state == "Disconnected" and dev.status == "enabled"
    updated = registry.update_device_with_sas("sdk-crud", dev.etag, "", "", "disabled")
    assert updated.status == "disabled"
    for i in range(3):
        registry.create_device_with_sas(f"sdk-page-{i}", "", "", "enabled")
        registry.update_twin(f"sdk-page-{i}", Twin(tags={"batch": "paged"}))
    page = registry.query_iot_hub(QuerySpecification(
        query="SELECT * FROM devices WHERE tags.batch = 'paged'"), max_item_count=2)
    assert len(page.items) == 2 and page.continuation_token
    rest = registry.query_iot_hub(QuerySpecification(
        query="SELECT * FROM devices WHERE tags.batch = 'paged'"),
        continuation_token=page.continuation_token, max_item_count=2)
    assert len(rest.items) == 1 and not rest.continuation_token
    registry.delete_device("sdk-crud")
    with pytest.raises(HttpOperationError) as err:
        registry.get_device("sdk-crud")
    assert err.value.response.status_code == 404
    with pytest.raises(HttpOperationError) as err:
        registry.create_device_with_sas("sdk-page-0", "", "", "enabled")
    assert err.value.response.status_code == 409


def test_service_rejects_a_wrong_policy_key(module_hub: HubProcess, monkeypatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(module_hub.ca_path))
    bad = module_hub.service_connection_string.rsplit("=", 2)[0] + "=" + "A" * 43 + "="
    with pytest.raises(HttpOperationError) as err:
        IoTHubRegistryManager.from_connection_string(bad).get_devices()
    assert err.value.response.status_code == 401


def test_model_id_announced_by_the_device_and_iot_edge_set_in_the_registry(module_hub: HubProcess, registry) -> None:
    cs = module_hub.create_device("sdk-pnp")
    client = IoTHubDeviceClient.create_from_connection_string(
        module_hub.sdk_connection_string(cs), server_verification_cert=module_hub.ca_pem,
        product_info="dtmi:com:example:Thermostat;1")  # the SDK puts it in the user name as model-id
    client.connect()
    try:
        # azure-iot-hub's Twin model predates modelId: read the service API's JSON itself.
        assert module_hub.get_twin("sdk-pnp")["modelId"] == "dtmi:com:example:Thermostat;1"
    finally:
        client.shutdown()
    assert module_hub.get_twin("sdk-pnp")["modelId"] == "dtmi:com:example:Thermostat;1"  # kept offline
    assert registry.get_device("sdk-pnp").capabilities.iot_edge is False
    created = registry.create_device_with_sas("sdk-edge", None, None, "enabled", iot_edge=True)
    assert created.capabilities.iot_edge is True
    assert registry.get_device("sdk-edge").capabilities.iot_edge is True
    assert registry.get_twin("sdk-edge").capabilities.iot_edge is True
    device = registry.get_device("sdk-edge")
    registry.update_device_with_sas("sdk-edge", device.etag, None, None, "enabled", iot_edge=False)
    assert registry.get_device("sdk-edge").capabilities.iot_edge is False


def test_what_the_local_hub_does_not_offer_is_refused_in_iot_hubs_json(module_hub: HubProcess, registry) -> None:
    # Configurations (automatic device management) are not offered: the service SDK still gets
    # IoT Hub's JSON error (ErrorCode in Message), not a plain-text page.
    configurations = IoTHubConfigurationManager.from_connection_string(module_hub.service_connection_string)
    for call in (lambda: configurations.get_configuration("cfg1"),
                 lambda: configurations.get_configurations(5)):
        with pytest.raises(HttpOperationError) as err:
            call()
        response = err.value.response
        assert response.status_code == 404
        assert response.json()["Message"].startswith("ErrorCode:NotFound;")
    from localhub.client.hub_client import HubRequestError

    with pytest.raises(HubRequestError) as wrong:
        module_hub.client.request("DELETE", "/statistics/devices")
    assert (wrong.value.status, wrong.value.code) == (405, "MethodNotAllowed")


def test_bulk_registry_operations_through_the_service_sdk(module_hub: HubProcess, registry) -> None:
    from azure.iot.hub.models import AuthenticationMechanism, ExportImportDevice, SymmetricKey

    key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    auth = AuthenticationMechanism(type="sas", symmetric_key=SymmetricKey(primary_key=key, secondary_key=key))
    created = registry.bulk_create_or_update_devices([
        ExportImportDevice(id="bulk-1", import_mode="create"),
        ExportImportDevice(id="bulk-2", import_mode="create", authentication=auth),
        ExportImportDevice(id="bulk-3", import_mode="create"),
    ])
    assert created.is_successful is True and created.errors == []
    assert registry.get_device("bulk-2").authentication.symmetric_key.primary_key == key
    mixed = registry.bulk_create_or_update_devices([
        ExportImportDevice(id="bulk-1", import_mode="update", status="disabled"),
        ExportImportDevice(id="bulk-2", import_mode="delete"),
        ExportImportDevice(id="bulk-3", import_mode="create"),  # exists: refused, the rest still done
        ExportImportDevice(id="bulk-4", import_mode="updateTwin", tags={"room": "a"}),  # no such device
    ])
    assert mixed.is_successful is False
    assert sorted((e.device_id, e.error_code) for e in mixed.errors) == [
        ("bulk-3", "DeviceAlreadyExists"), ("bulk-4", "DeviceNotFound")]
    assert registry.get_device("bulk-1").status == "disabled"
    with pytest.raises(HttpOperationError) as err:
        registry.get_device("bulk-2")
    assert err.value.response.status_code == 404
    twin = registry.bulk_create_or_update_devices([ExportImportDevice(id="bulk-3", import_mode="updateTwin",
                                                                      tags={"room": "b"})])
    assert twin.is_successful is True and registry.get_twin("bulk-3").tags == {"room": "b"}
    from localhub.client.hub_client import HubRequestError

    with pytest.raises(HubRequestError) as too_many:  # IoT Hub's limit: 100 a call
        module_hub.client.request("POST", "/devices", [{"id": f"many-{i}", "importMode": "create"}
                                                       for i in range(101)])
    assert (too_many.value.status, too_many.value.code) == (400, "TooManyDevices")
    assert registry.get_devices(max_number_of_devices=1000) and not [
        d for d in registry.get_devices(max_number_of_devices=1000) if d.device_id.startswith("many-")]
