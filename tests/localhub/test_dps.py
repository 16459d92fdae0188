"""The provisioning service beside the local hub with the official ProvisioningDeviceClient
(azure-iot-device), unchanged: an individual enrollment and an enrollment group with symmetric
keys, registration over MQTT to this hub, then the device on the hub with what DPS gave it; a
Plug and Play model id in the registration payload; wrong keys and scopes refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from azure.iot.device import IoTHubDeviceClient, Message, ProvisioningDeviceClient
from azure.iot.device.exceptions import ClientError, CredentialError
from localhub.protocol import auth
from localhub.testing import HubProcess

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _cli(hub: HubProcess, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "localhub", "--state", str(hub.state_dir), "dps", *args],
                         capture_output=True, text=True, timeout=30, env={"PYTHONPATH": str(TOOLS), "PATH": ""})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _provisioning(hub: HubProcess, registration_id: str, key: str, scope: str) -> ProvisioningDeviceClient:
    return ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host=hub.host, registration_id=registration_id, id_scope=scope,
        symmetric_key=key, server_verification_cert=hub.ca_pem)


def _telemetry_through(hub: HubProcess, result, key: str, body: str) -> None:
    """The device connects where DPS sent it, with the key it registered with, and sends."""
    device = IoTHubDeviceClient.create_from_symmetric_key(
        symmetric_key=key, hostname=result.registration_state.assigned_hub,
        device_id=result.registration_state.device_id, server_verification_cert=hub.ca_pem)
    device.connect()
    try:
        device.send_message(Message(body))
    finally:
        device.shutdown()
    (msg,) = hub.wait_telemetry(result.registration_state.device_id, 1, 15)
    assert msg["body"] == body


def test_an_individual_enrollment_registers_and_the_device_reaches_the_hub(module_hub: HubProcess) -> None:
    hub = module_hub
    scope = _cli(hub, "id-scope")
    enrolled = json.loads(_cli(hub, "enrollment", "create", "sensor-01", "--device-id", "kitchen-sensor"))
    key = enrolled["attestation"]["symmetricKey"]["primaryKey"]
    client = _provisioning(hub, "sensor-01", key, scope)
    client.provisioning_payload = {"modelId": "dtmi:com:example:Thermostat;1"}
    result = client.register()
    assert result.status == "assigned"
    state = result.registration_state
    assert (state.assigned_hub, state.device_id, state.sub_status) == (hub.host, "kitchen-sensor", "initialAssignment")
    _telemetry_through(hub, result, key, '{"t": 20}')
    assert hub.get_twin("kitchen-sensor")["modelId"] == "dtmi:com:example:Thermostat;1"

    # registering again keeps the identity (and its twin) and says so
    again = _provisioning(hub, "sensor-01", key, scope)
    second = again.register()
    assert second.registration_state.device_id == "kitchen-sensor"
    assert second.registration_state.sub_status == "deviceDataMigrated"
    assert second.registration_state.created_date_time == state.created_date_time
    listed = json.loads(_cli(hub, "registrations"))
    assert [(r["registrationId"], r["deviceId"], r["assignedHub"]) for r in listed
            if r["registrationId"] == "sensor-01"] == [("sensor-01", "kitchen-sensor", hub.host)]


def test_an_enrollment_group_registers_devices_with_derived_keys(module_hub: HubProcess) -> None:
    hub = module_hub
    scope = _cli(hub, "id-scope")
    group = json.loads(_cli(hub, "enrollment-group", "create", "line-3"))
    group_key = group["attestation"]["symmetricKey"]["primaryKey"]
    for registration_id in ("press-a", "press-b"):
        key = auth.derive_device_key(group_key, registration_id)  # as the device computes it
        assert _cli(hub, "enrollment-group", "device-key", "line-3", registration_id) == key
        client = _provisioning(hub, registration_id, key, scope)
        result = client.register()
        assert result.status == "assigned" and result.registration_state.device_id == registration_id
        _telemetry_through(hub, result, key, f'{{"from": "{registration_id}"}}')


@pytest.mark.parametrize("what", ["wrong key", "group key itself", "wrong scope", "not enrolled"])
def test_a_registration_that_does_not_prove_its_enrollment_is_refused(module_hub: HubProcess, what: str) -> None:
    hub = module_hub
    scope = _cli(hub, "id-scope")
    enrolled = json.loads(_cli(hub, "enrollment", "create", f"refused-{what.replace(' ', '-')}"))
    registration_id = enrolled["registrationId"]
    key = enrolled["attestation"]["symmetricKey"]["primaryKey"]
    if what == "wrong key":
        key = auth.new_key()
    elif what == "group key itself":
        group = json.loads(_cli(hub, "enrollment-group", "create", "for-refusals-" + registration_id))
        registration_id, key = "in-no-group", group["attestation"]["symmetricKey"]["primaryKey"]
    elif what == "wrong scope":
        scope = "0ne00000000"
    else:
        registration_id = "never-enrolled"
    client = _provisioning(hub, registration_id, key, scope)
    with pytest.raises((CredentialError, ClientError)):
        client.register()
    assert all(d["deviceId"] != registration_id for d in hub.client.list_devices())
    assert f"refused DPS CONNECT (registration '{registration_id}')" in hub.log_path.read_text()


def test_malformed_requests_get_an_error_answer_and_the_link_stays(module_hub: HubProcess) -> None:
    """What the official client never sends, sent raw: malformed JSON, someone else's
    registration id, an unknown operation and topic; each is answered, none ends the link."""
    import time

    from localhub_rawclient import RawClient
    from localhub.protocol.mqtt_codec import Publish

    hub = module_hub
    scope = _cli(hub, "id-scope")
    enrolled = json.loads(_cli(hub, "enrollment", "create", "raw-dps"))
    key = enrolled["attestation"]["symmetricKey"]["primaryKey"]
    expiry = int(time.time()) + 600
    token = auth.generate_sas(f"{scope}/registrations/raw-dps", key, expiry, "registration")
    raw = RawClient(hub.host, hub.mqtt_port, str(hub.ca_path))
    try:
        assert raw.connect("raw-dps", f"{scope}/registrations/raw-dps/api-version=2019-03-31", token).return_code == 0
        assert raw.subscribe("$dps/registrations/res/#").return_codes == [1]

        def ask(topic: str, body: bytes) -> tuple[str, dict]:
            raw.publish(topic, body)
            answer = raw.expect(Publish)
            return answer.topic, json.loads(answer.payload)

        topic, body = ask("$dps/registrations/PUT/iotdps-register/?$rid=1", b"{not json")
        assert topic.startswith("$dps/registrations/res/400/?$rid=1") and "malformed" in body["message"]
        topic, body = ask("$dps/registrations/PUT/iotdps-register/?$rid=2", b'{"registrationId": "someone-else"}')
        assert topic.startswith("$dps/registrations/res/400/?$rid=2")
        topic, body = ask("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=3&operationId=nope", b"")
        assert topic.startswith("$dps/registrations/res/404/?$rid=3")
        topic, body = ask("$dps/registrations/POST/elsewhere/?$rid=4", b"")
        assert topic.startswith("$dps/registrations/res/404/?$rid=4")
        topic, body = ask("$dps/registrations/PUT/iotdps-register/?$rid=5", b'{"registrationId": "raw-dps"}')
        assert topic.startswith("$dps/registrations/res/202/?$rid=5&retry-after=") and body["status"] == "assigning"
    finally:
        raw.close()


def test_the_cli_lists_and_deletes_enrollments(module_hub: HubProcess) -> None:
    _cli(module_hub, "enrollment", "create", "cli-listed")
    _cli(module_hub, "enrollment-group", "create", "cli-group")
    assert "cli-listed" in [e["registrationId"] for e in json.loads(_cli(module_hub, "enrollment", "list"))]
    assert "cli-group" in [e["enrollmentGroupId"] for e in json.loads(_cli(module_hub, "enrollment-group", "list"))]
    _cli(module_hub, "enrollment", "delete", "cli-listed")
    _cli(module_hub, "enrollment-group", "delete", "cli-group")
    again = subprocess.run([sys.executable, "-m", "localhub", "--state", str(module_hub.state_dir), "dps",
                            "enrollment", "delete", "cli-listed"], capture_output=True, text=True, timeout=30,
                           env={"PYTHONPATH": str(TOOLS), "PATH": ""})
    assert again.returncode == 1 and "no enrollment 'cli-listed'" in again.stderr
    bad = subprocess.run([sys.executable, "-m", "localhub", "--state", str(module_hub.state_dir), "dps",
                          "enrollment", "create", "Not Valid"], capture_output=True, text=True, timeout=30,
                         env={"PYTHONPATH": str(TOOLS), "PATH": ""})
    assert bad.returncode == 1 and "lowercase" in bad.stderr


def test_registration_over_https_as_dps_device_api_gives_it(module_hub: HubProcess) -> None:
    """DPS's HTTPS device API: PUT register, then GET the operation until assigned; refusals
    in DPS's JSON."""
    import http.client
    import ssl
    import time

    hub = module_hub
    scope = _cli(hub, "id-scope")
    key = json.loads(_cli(hub, "enrollment", "create", "https-node"))["attestation"]["symmetricKey"]["primaryKey"]
    token = auth.generate_sas(f"{scope}/registrations/https-node", key, int(time.time()) + 600, "registration")
    ctx = ssl.create_default_context(cafile=str(hub.ca_path))

    def call(method: str, path: str, body: dict | None = None, authorization: str = token):
        conn = http.client.HTTPSConnection(hub.host, hub.https_port, context=ctx, timeout=10)
        try:
            conn.request(method, path + "?api-version=2019-03-31", json.dumps(body) if body else None,
                         {"Authorization": authorization, "Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.getheader("Retry-After"), json.loads(response.read() or b"{}")
        finally:
            conn.close()

    base = f"/{scope}/registrations/https-node"
    status, retry, body = call("PUT", base + "/register", {"registrationId": "https-node"})
    assert (status, body["status"]) == (202, "assigning") and int(retry) >= 1
    deadline = time.monotonic() + 15
    while status != 200 and time.monotonic() < deadline:
        time.sleep(int(retry or 1))
        status, retry, answer = call("GET", f"{base}/operations/{body['operationId']}")
    assert status == 200 and answer["status"] == "assigned"
    assert answer["registrationState"]["assignedHub"] == hub.host
    assert answer["registrationState"]["deviceId"] == "https-node"

    wrong = auth.generate_sas(f"{scope}/registrations/https-node", auth.new_key(), int(time.time()) + 600, "registration")
    status, _, refused = call("PUT", base + "/register", {"registrationId": "https-node"}, wrong)
    assert status == 401 and refused["errorCode"] == 401002 and "trackingId" in refused
    status, _, unknown = call("GET", f"{base}/operations/no-such-operation")
    assert status == 404
