"""Module identities with the official SDKs: the service SDK manages them (create, get, list,
update, delete; module twins; module methods), ``IoTHubModuleClient`` connects as one from its
module connection string, and a device and its module are served side by side."""

from __future__ import annotations

import json
import queue
import time

import pytest
from azure.iot.device import IoTHubDeviceClient, IoTHubModuleClient, Message, MethodResponse
from azure.iot.device.exceptions import CredentialError
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod, Twin, TwinProperties
from click.testing import CliRunner
from localhub.cli.main import main
from localhub.testing import HubProcess
from msrest.exceptions import HttpOperationError


@pytest.fixture
def registry(module_hub: HubProcess, monkeypatch: pytest.MonkeyPatch) -> IoTHubRegistryManager:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(module_hub.ca_path))
    return IoTHubRegistryManager.from_connection_string(module_hub.service_connection_string)


def _status(call) -> int:
    try:
        call()
        return 200
    except HttpOperationError as exc:
        return exc.response.status_code


def test_the_service_sdk_manages_module_identities(module_hub: HubProcess, registry) -> None:
    module_hub.create_device("mod-crud")
    created = registry.create_module_with_sas("mod-crud", "sensor", "me", None, None)
    assert (created.device_id, created.module_id, created.managed_by) == ("mod-crud", "sensor", "me")
    assert created.authentication.symmetric_key.primary_key
    registry.create_module_with_sas("mod-crud", "actuator", None, None, None)
    assert [m.module_id for m in registry.get_modules("mod-crud")] == ["actuator", "sensor"]
    got = registry.get_module("mod-crud", "sensor")
    assert got.connection_state == "Disconnected" and got.etag
    key = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U="
    updated = registry.update_module_with_sas("mod-crud", "sensor", "other", got.etag, key, key)
    assert updated.managed_by == "other" and updated.authentication.symmetric_key.primary_key == key
    assert _status(lambda: registry.create_module_with_sas("mod-crud", "sensor", None, None, None)) == 409
    assert _status(lambda: registry.create_module_with_sas("no-such-device", "m", None, None, None)) == 404
    assert _status(lambda: registry.create_module_with_sas("mod-crud", "bad/id", None, None, None)) in (400, 404)
    twin = registry.get_module_twin("mod-crud", "sensor")
    assert (twin.device_id, twin.module_id) == ("mod-crud", "sensor")
    registry.delete_module("mod-crud", "actuator")
    assert _status(lambda: registry.get_module("mod-crud", "actuator")) == 404
    registry.delete_device("mod-crud")  # takes its modules with it
    module_hub.create_device("mod-crud")
    assert registry.get_modules("mod-crud") == []


def test_a_module_client_and_its_device_are_served_side_by_side(module_hub: HubProcess, registry) -> None:
    device_cs = module_hub.create_device("mod-dev")
    module_cs = module_hub.create_module("mod-dev", "thermo")
    cert = module_hub.ca_pem
    module = IoTHubModuleClient.create_from_connection_string(
        module_hub.sdk_connection_string(module_cs), server_verification_cert=cert)
    device = IoTHubDeviceClient.create_from_connection_string(
        module_hub.sdk_connection_string(device_cs), server_verification_cert=cert)
    module.connect()
    device.connect()
    try:
        assert registry.get_module("mod-dev", "thermo").connection_state == "Connected"
        # telemetry: the module's carries its module id
        module.send_message(Message('{"t": 21}', message_id="from-module"))
        device.send_message(Message('{"d": 1}', message_id="from-device"))
        seen = module_hub.wait_telemetry("mod-dev", 2)
        by_id = {m["systemProperties"]["message-id"]: m["systemProperties"] for m in seen}
        assert by_id["from-module"]["iothub-connection-module-id"] == "thermo"
        assert "iothub-connection-module-id" not in by_id["from-device"]

        # the module twin is its own: reported, desired
        assert module.get_twin()["desired"]["$version"] == 1
        module.patch_twin_reported_properties({"unit": "C"})
        assert registry.get_module_twin("mod-dev", "thermo").properties.reported["unit"] == "C"
        assert "unit" not in registry.get_twin("mod-dev").properties.reported
        patches: queue.Queue = queue.Queue()
        module.on_twin_desired_properties_patch_received = patches.put
        device_patches: queue.Queue = queue.Queue()
        device.on_twin_desired_properties_patch_received = device_patches.put
        time.sleep(0.5)  # both subscribed
        twin = registry.get_module_twin("mod-dev", "thermo")
        registry.update_module_twin("mod-dev", "thermo",
                                    Twin(properties=TwinProperties(desired={"setpoint": 22})), twin.etag)
        assert patches.get(timeout=10) == {"setpoint": 22, "$version": 2}
        assert device_patches.empty()

        # methods: each identity answers its own
        def answer(client, who):
            def handler(request):
                client.send_method_response(MethodResponse.create_from_method_request(
                    request, 200, {"who": who, "payload": request.payload}))
            return handler

        module.on_method_request_received = answer(module, "module")
        device.on_method_request_received = answer(device, "device")
        time.sleep(0.5)
        to_module = registry.invoke_device_module_method(
            "mod-dev", "thermo", CloudToDeviceMethod(method_name="ping", payload={"n": 1},
                                                     response_timeout_in_seconds=10))
        assert to_module.status == 200 and to_module.payload == {"who": "module", "payload": {"n": 1}}
        to_device = registry.invoke_device_method(
            "mod-dev", CloudToDeviceMethod(method_name="ping", payload=2, response_timeout_in_seconds=10))
        assert to_device.payload == {"who": "device", "payload": 2}
    finally:
        module.shutdown()
        device.shutdown()
    assert _status(lambda: registry.invoke_device_module_method(
        "mod-dev", "thermo", CloudToDeviceMethod(method_name="ping", response_timeout_in_seconds=5))) == 404


def test_a_module_token_opens_only_its_module(module_hub: HubProcess) -> None:
    """A module's key signs for the module (sr .../devices/{d}/modules/{m}); it is not the
    device's key, and a device token does not connect the module."""
    device_cs = module_hub.create_device("mod-keys")
    module_cs = module_hub.create_module("mod-keys", "m1")
    module_key = module_cs.rsplit("SharedAccessKey=", 1)[1]
    device_key = device_cs.rsplit("SharedAccessKey=", 1)[1]
    swapped = module_cs.replace(module_key, device_key)
    client = IoTHubModuleClient.create_from_connection_string(
        module_hub.sdk_connection_string(swapped), server_verification_cert=module_hub.ca_pem,
        connection_retry=False)
    try:
        with pytest.raises(CredentialError):  # CONNACK 5, not some other failure
            client.connect()
    finally:
        client.shutdown()


def test_the_cli_manages_modules_and_prints_their_connection_strings(module_hub: HubProcess) -> None:
    module_hub.create_device("mod-cli")

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["--state", str(module_hub.state_dir), *args],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    created = json.loads(run("module", "create", "mod-cli", "edge"))
    assert created["moduleId"] == "edge"
    assert "mod-cli/edge" in run("module", "list", "mod-cli")
    cs = run("module", "connection-string", "mod-cli", "edge", "--sdk").strip()
    assert f"DeviceId=mod-cli;ModuleId=edge;SharedAccessKey={created['authentication']['symmetricKey']['primaryKey']}" in cs
    client = IoTHubModuleClient.create_from_connection_string(cs, server_verification_cert=module_hub.ca_pem)
    client.connect()
    client.shutdown()
    run("module", "delete", "mod-cli", "edge")
    assert "mod-cli/edge" not in run("module", "list", "mod-cli")
