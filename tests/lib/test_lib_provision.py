"""The device library's DPS registration (iothub.provision) against the local hub's
provisioning service over TLS, through MicroPython-like sockets: an individual enrollment, a
group's derived key, the assignment cached on flash for the next boot, refusals; then the
device on the hub with what it was given. The same code runs on MicroPython's unix port in
tests/unix/test_unix_provision.py."""

import json

import pytest

import lib_mpnet
from iothub import net, provision
from iothub.client import IoTHubClient
from iothub.errors import AuthError
from localhub.protocol import auth
from localhub.server import open_dps


@pytest.fixture
def dps(module_hub):
    net.use(lib_mpnet.SOCKET, lib_mpnet.SSL)
    yield open_dps(module_hub.state_dir)
    net.use()


def _register(hub, scope, registration_id, key, **kw):
    return provision.register(scope, registration_id, key, hub.ca_der, host=hub.host, port=hub.mqtt_port, **kw)


def test_register_then_send_telemetry_where_dps_said(module_hub, dps):
    enrolled = dps.enroll("lib-sensor", False, device_id="lib-sensor-dev")
    result = _register(module_hub, dps.id_scope, "lib-sensor", enrolled.primary_key, model_id="dtmi:com:example:Sensor;1")
    assert result == {"hub": module_hub.host, "device_id": "lib-sensor-dev", "substatus": "initialAssignment"}
    client = IoTHubClient(provision.connection_string(result, enrolled.primary_key), ca=module_hub.ca_der,
                          port=module_hub.mqtt_port, keepalive=60)
    client.connect()
    try:
        assert client.send_telemetry(b'{"t": 1}')
        for _ in range(200):
            client.poll()
            if client.stats()["inflight"] == 0:
                break
    finally:
        client.disconnect()
    (msg,) = module_hub.wait_telemetry("lib-sensor-dev", 1, 10)
    assert msg["body"] == '{"t": 1}'
    assert module_hub.get_twin("lib-sensor-dev")["modelId"] == "dtmi:com:example:Sensor;1"


def test_a_group_device_registers_with_its_derived_key_and_the_answer_is_cached(module_hub, dps, tmp_path):
    group = dps.enroll("lib-group", True)
    key = provision.derive_key(group.primary_key, "lib-member-7")
    assert key == auth.derive_device_key(group.primary_key, "lib-member-7")  # what the hub derives
    path = str(tmp_path / "dps.json")
    first = provision.cached(path, dps.id_scope, "lib-member-7", key, module_hub.ca_der,
                             host=module_hub.host, port=module_hub.mqtt_port)
    assert first["device_id"] == "lib-member-7" and json.load(open(path))["hub"] == module_hub.host
    registrations = [r.registration_id for r in dps.store.registrations()]
    # the next boot: from flash, DPS not asked (a wrong key would be refused if it were)
    again = provision.cached(path, dps.id_scope, "lib-member-7", provision.derive_key(auth.new_key(), "x"),
                             module_hub.ca_der, host=module_hub.host, port=module_hub.mqtt_port)
    assert again.pop("cached") is True and again == first
    assert [r.registration_id for r in dps.store.registrations()] == registrations
    # forced: registers again
    forced = provision.cached(path, dps.id_scope, "lib-member-7", key, module_hub.ca_der, force=True,
                              host=module_hub.host, port=module_hub.mqtt_port)
    assert forced["substatus"] == "deviceDataMigrated"


def test_a_wrong_key_is_an_auth_error(module_hub, dps):
    dps.enroll("lib-refused", False)
    with pytest.raises(AuthError):
        _register(module_hub, dps.id_scope, "lib-refused", auth.new_key())
