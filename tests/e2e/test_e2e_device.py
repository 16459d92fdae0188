"""Issue 4 "Show" on the host emulation layer: telemetry with properties, C2D, twin round trips
(stale patch ignored), direct methods through the official service SDK.

The library is device code in a simulated ESP32 process (its socket/ssl/time, epoch 2000, RTC set
by ntptime) talking MQTT over TLS to a real local hub that the device verifies with the hub's CA.
"""

from __future__ import annotations

import json

import pytest
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod

from e2e_support import touch
from service_clients import device_events, trust_hub_ca

MAIN = r"""
from e2e_dev import ev, network_up, make_client, serve, flag
from iothub.client import default_transport
network_up()


class Tap:
    # The library's own MQTT client, recording the desired patches the hub delivers so the
    # test can have one delivered again later (a duplicate, as after a QoS 0 resend).
    def __init__(self, inner):
        self.inner = inner
        self.cb = None
        self.patches = []

    def set_callback(self, cb):
        self.cb = cb

        def record(topic, msg):
            topic = bytes(topic)
            if topic.startswith(b"$iothub/twin/PATCH/properties/desired/"):
                self.patches.append((topic, bytes(msg)))
            cb(topic, msg)

        self.inner.set_callback(record)

    def __getattr__(self, name):
        return getattr(self.inner, name)


taps = []


def transport(*args):
    taps.append(Tap(default_transport(*args)))
    return taps[-1]


c = make_client(keepalive=60, transport=transport)
c.on_c2d(lambda body, props: ev("c2d", body=body.decode(), props=props))
c.on_desired(lambda d, v, full: ev("desired", desired=d, version=v, full=full))
c.on_method("add", lambda p: (200, {"sum": p["a"] + p["b"]}))
c.on_method("busy", lambda p: (503, {"retry_after": 5}))
c.connect()
ev("connected", clock_year=__import__("time").gmtime()[0])
sent = c.send_telemetry(b'{"t": 21.5}', [("$.ct", "application/json"), ("$.ce", "utf-8"),
                        ("$.mid", "m-1"), ("$.cid", "c-9"), ("room", "a b&c=d"), ("alert", "")])
twin = c.get_twin()
ev("twin", desired=twin.get("desired"), reported=twin.get("reported"))
c.patch_reported({"fw": "1.2.3", "nested": {"a": 1, "b": None}},
                 lambda status, version: ev("reported", status=status, version=version))
ev("ready", sent=sent)


def on_flag():
    if flag("replay"):
        # Deliver the first desired patch again: older than the version now held.
        topic, msg = taps[-1].patches[0]
        taps[-1].cb(topic, msg)
        ev("replayed", topic=topic.decode(), held=c.twin_version(), desired=c.desired())


serve(c, on_flag=on_flag)
ev("stats", **c.stats())
c.disconnect()
ev("done")
"""


@pytest.fixture
def registry(hub, monkeypatch: pytest.MonkeyPatch) -> IoTHubRegistryManager:
    trust_hub_ca(monkeypatch, hub)  # msrest (REST) and uamqp (C2D over AMQP)
    manager = IoTHubRegistryManager.from_connection_string(hub.service_connection_string)
    yield manager
    manager.amqp_svc_client.disconnect_sync()


def test_telemetry_c2d_twin_and_methods(hub, make_board, registry) -> None:
    device = "e2e-api"
    board = make_board(device, MAIN)
    # The board boots with its RTC in 2000; the token is only valid after ntptime set it.
    assert board.expect_json("clock-before", 20)["year"] == 2000
    assert board.expect_json("clock", 10)["epoch"] == 2000
    board.expect_json("connected", 20)
    twin = board.expect_json("twin", 10)
    assert twin["desired"]["$version"] >= 1
    ready = board.expect_json("ready", 10)
    assert ready["sent"] is True

    # Telemetry: body, application properties and system properties intact, as a back end
    # reads them from the Event Hub-compatible endpoint with the official consumer.
    (event,) = device_events(hub, device, 1)
    assert event.body_as_str() == '{"t": 21.5}'
    assert event.properties == {b"room": b"a b&c=d", b"alert": b""}
    system = event.system_properties
    assert system[b"message-id"] == b"m-1"
    assert system[b"correlation-id"] == b"c-9"
    assert system[b"content-type"] == b"application/json"
    assert system[b"content-encoding"] == b"utf-8"
    assert system[b"iothub-connection-device-id"] == device.encode()
    assert system[b"iothub-message-source"] == b"Telemetry"

    # Reported properties: acknowledged (204) and seen in the service's twin; None deleted.
    assert board.expect_json("reported", 10)["status"] == 204
    reported = hub.get_twin(device)["properties"]["reported"]
    assert reported["fw"] == "1.2.3" and reported["nested"] == {"a": 1}

    # C2D with properties reaches the callback, sent with the official service SDK (AMQP).
    registry.send_c2d_message(device, "switch on", properties={"cmd": "relay", "level": "50%",
                                                               "messageId": "c2d-1"})
    c2d = board.expect_json("c2d", 10)
    assert c2d["body"] == "switch on"
    assert c2d["props"]["cmd"] == "relay" and c2d["props"]["level"] == "50%"

    # Desired patches: two in a row, each newer, each applied as a patch.
    first = hub.update_twin(device, {"properties": {"desired": {"rate": 5}}})
    patch1 = board.expect_json("desired", 10)
    assert patch1["desired"] == {"rate": 5} and patch1["full"] is False
    assert patch1["version"] == first["properties"]["desired"]["$version"]
    hub.update_twin(device, {"properties": {"desired": {"rate": 7, "mode": "eco"}}})
    patch2 = board.expect_json("desired", 10)
    assert patch2["desired"] == {"rate": 7, "mode": "eco"} and patch2["version"] > patch1["version"]

    # The first patch delivered again is stale: ignored, the state keeps the newer values.
    touch(board, "replay")
    board.expect_json("log", 10, text="stale desired patch %d ignored" % patch1["version"])
    replayed = board.expect_json("replayed", 5)
    assert replayed["held"] == patch2["version"]
    assert replayed["desired"]["rate"] == 7 and replayed["desired"]["mode"] == "eco"

    # Direct methods through the official service SDK: status and payload of the handler,
    # a handler's own error status, and 404 for a method the device does not know.
    result = registry.invoke_device_method(device, CloudToDeviceMethod(
        method_name="add", payload={"a": 2, "b": 40}, response_timeout_in_seconds=10))
    assert result.status == 200 and result.payload == {"sum": 42}
    result = registry.invoke_device_method(device, CloudToDeviceMethod(
        method_name="busy", payload=None, response_timeout_in_seconds=10))
    assert result.status == 503 and result.payload == {"retry_after": 5}
    result = registry.invoke_device_method(device, CloudToDeviceMethod(
        method_name="nope", payload={"x": 1}, response_timeout_in_seconds=10))
    assert result.status == 404
    assert "nope" in json.dumps(result.payload)

    touch(board, "stop")
    stats = board.expect_json("stats", 10)
    assert stats["dropped"] == 0 and stats["inflight"] == 0 and stats["connects"] == 1
    board.expect_json("done", 10)
    assert board.wait(15) == 0  # main.py returned: nothing crashed
    # The callback saw the full twin once (after connect) and each patch once: not the stale one.
    assert [(e["version"], e["full"]) for e in board.events("desired")] == [
        (twin["desired"]["$version"], True), (patch1["version"], False), (patch2["version"], False)]


UMQTT_MAIN = r"""
import json
import ssl
import time
from e2e_dev import ev, network_up, make_client, serve, read_ca
from umqtt.simple import MQTTClient
network_up()


def transport(client_id, server, port, user, password, keepalive, ssl_context):
    # micropython-lib's umqtt.simple 1.3.4 takes ssl=True plus ssl_params for
    # ussl.wrap_socket(sock, **ssl_params): ask for verification against the hub's CA.
    params = {"cert_reqs": ssl.CERT_REQUIRED, "cadata": read_ca(), "server_hostname": server}
    return MQTTClient(client_id, server, port, user, password, keepalive, ssl=True, ssl_params=params)


c = make_client(keepalive=60, transport=transport)
c.on_method("add", lambda p: (200, {"sum": p["a"] + p["b"]}))
c.connect()
for i in range(3):
    ev("sent", seq=i, now=c.send_telemetry(json.dumps({"seq": i}), {"via": "umqtt.simple"}))
ev("ready", umqtt=isinstance(c._mqtt, MQTTClient), **c.stats())
serve(c)
c.disconnect()
ev("done")
"""


@pytest.fixture(scope="module")
def umqtt_files() -> dict[str, bytes]:
    """micropython-lib's umqtt.simple, unchanged, as board files (fetched by `make setup`)."""
    from boardkit import vendor

    return {"lib/" + name: path.read_bytes() for name, path in vendor.fetch().items()}


def test_umqtt_simple_transport(hub, make_board, registry, umqtt_files) -> None:
    files = dict(umqtt_files)
    device = "e2e-umqtt"
    board = make_board(device, UMQTT_MAIN, files=files)
    ready = board.expect_json("ready", 30)
    assert ready["umqtt"] is True
    assert ready["queued"] == 0 and ready["inflight"] == 0
    # umqtt.simple publishes QoS 1 blocking until the PUBACK: sent at once, every one.
    assert [e["now"] for e in board.events("sent")] == [True, True, True]
    messages = hub.wait_telemetry(device, 3, 10)
    assert [json.loads(m["body"])["seq"] for m in messages] == [0, 1, 2]
    assert all(m["properties"] == {"via": "umqtt.simple"} for m in messages)
    result = registry.invoke_device_method(device, CloudToDeviceMethod(
        method_name="add", payload={"a": 1, "b": 2}, response_timeout_in_seconds=10))
    assert result.status == 200 and result.payload == {"sum": 3}
    result = registry.invoke_device_method(device, CloudToDeviceMethod(
        method_name="missing", payload=None, response_timeout_in_seconds=10))
    assert result.status == 404
    touch(board, "stop")
    board.expect_json("done", 10)
    assert board.wait(15) == 0
    assert "without certificate verification" not in board.output


def test_umqtt_simple_refuses_a_hub_it_cannot_verify(hub, make_board, tmp_path, umqtt_files) -> None:
    """The same transport with another CA: the TLS handshake fails, nothing is sent."""
    from tls_support import make_certificates

    (tmp_path / "other").mkdir()
    other_ca = make_certificates(tmp_path / "other").ca_der
    files = dict(umqtt_files, **{"ca.der": other_ca})
    script = UMQTT_MAIN.replace("c.connect()\n", "try:\n    c.connect()\nexcept Exception as e:\n"
                                "    ev('refused', kind=type(e).__name__, error=str(e).strip())\n    raise SystemExit\n")
    board = make_board("e2e-umqtt-badca", script, files=files)
    refused = board.expect_json("refused", 30)
    # mbedTLS's verify text in a ValueError, as umqtt.simple's ssl.wrap_socket() raises it.
    assert refused == {"event": "refused", "kind": "ValueError",
                       "error": "The certificate is not correctly signed by the trusted CA"}
    assert board.wait(15) == 0
    assert hub.telemetry("e2e-umqtt-badca") == []
