"""The MQTT endpoint over real TLS sockets with a raw client: IoT Hub's dialect, its refusals,
and proof that a misbehaving client never disturbs another connected device."""

from __future__ import annotations

import json
import time

import pytest
from localhub.client.hub_client import HubRequestError
from localhub.protocol.mqtt_codec import (
    Connack,
    Connect,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    encode,
)
from localhub.testing import HubProcess
from localhub_rawclient import RawClient, connect_device, device_token

API = "?api-version=2021-04-12"


@pytest.fixture(scope="module")
def bystander(module_hub: HubProcess):
    """A device that stays connected through every bad-input test in this module."""
    module_hub.create_device("bystander")
    client = connect_device(module_hub, "bystander", keepalive=600)
    client.subscribe("$iothub/twin/res/#", "devices/bystander/messages/devicebound/#")
    yield client
    client.close()


def assert_bystander_healthy(hub: HubProcess, client: RawClient) -> None:
    before = len(hub.telemetry("bystander"))
    assert client.publish("devices/bystander/messages/events/k=v", b"alive") is not None
    client.publish("$iothub/twin/GET/?$rid=health")
    res = client.expect(Publish)
    assert res.topic.startswith("$iothub/twin/res/200/?$rid=health")
    assert len(hub.telemetry("bystander")) == before + 1
    assert hub.client.get_device("bystander")["connectionState"] == "Connected"


def raw(hub: HubProcess) -> RawClient:
    return RawClient(hub.host, hub.mqtt_port, str(hub.ca_path))


def refused_code(hub: HubProcess, device_id: str, username: str, password: str | None) -> int | None:
    client = raw(hub)
    try:
        ack = client.connect(device_id, username, password)
        assert isinstance(ack, Connack)
        assert client.closed_by_hub(), "hub must close a refused connection"
        return ack.return_code
    finally:
        client.close()


def test_connect_checks_against_registry(module_hub: HubProcess, bystander) -> None:
    hub = module_hub
    hub.create_device("auth-dev")
    key = hub.device_key("auth-dev")
    user = f"{hub.hostname}/auth-dev/{API}"
    other_key = hub.device_key("bystander")
    assert refused_code(hub, "auth-dev", user, device_token(hub.hostname, "auth-dev", other_key)) == 5
    assert refused_code(hub, "auth-dev", user, device_token(hub.hostname, "auth-dev", key, ttl=-10)) == 5
    # a valid token for another device's resource
    assert refused_code(hub, "auth-dev", user, device_token(hub.hostname, "bystander", other_key)) == 5
    assert refused_code(hub, "auth-dev", user, "not a token") == 5
    assert refused_code(hub, "auth-dev", user, None) == 5
    assert refused_code(hub, "nobody", f"{hub.hostname}/nobody/{API}",
                        device_token(hub.hostname, "nobody", key)) == 5
    # user name naming another device or hub, or without an api-version
    token = device_token(hub.hostname, "auth-dev", key)
    assert refused_code(hub, "auth-dev", f"{hub.hostname}/bystander/{API}", token) == 5
    assert refused_code(hub, "auth-dev", f"elsewhere.example/auth-dev/{API}", token) == 5
    assert refused_code(hub, "auth-dev", f"{hub.hostname}/auth-dev/", token) == 5
    # the secondary key and the older api-version the Python SDK uses are accepted
    secondary = hub.device_key("auth-dev", secondary=True)
    client = raw(hub)
    ack = client.connect("auth-dev", f"{hub.hostname}/auth-dev/?api-version=2019-10-01&DeviceClientType=x",
                         device_token(hub.hostname, "auth-dev", secondary))
    assert ack == Connack(False, 0)
    client.close()
    assert_bystander_healthy(hub, bystander)


def test_broken_packets_close_only_their_connection(module_hub: HubProcess, bystander) -> None:
    hub = module_hub
    hub.create_device("rude")
    # garbage instead of CONNECT
    client = raw(hub)
    client.send(b"\x10\x05\x00\x01Zgarbage-after")
    assert client.closed_by_hub()
    client.close()
    # a CONNECT with a reserved flag set (malformed per 3.1.2-3)
    packet = bytearray(encode(Connect("rude", "u", b"p", 60, True)))
    packet[9] |= 0x01
    client = raw(hub)
    client.send(bytes(packet))
    assert client.closed_by_hub()
    client.close()
    # truncated: half a CONNECT, then the client goes away
    client = raw(hub)
    client.send(encode(Connect("rude", "u", b"p", 60, True))[:7])
    client.close()
    # oversized: a PUBLISH announcing 200 MB is refused as soon as its header arrives
    client = connect_device(hub, "rude")
    client.send(b"\x30\xff\xff\xff\x5f")
    assert client.closed_by_hub()
    client.close()
    # a telemetry message over 256 KB
    client = connect_device(hub, "rude")
    client.send_packet(Publish("devices/rude/messages/events/", b"x" * (256 * 1024 + 1), 1, 1))
    assert client.closed_by_hub()
    client.close()
    # QoS 2 is not supported: IoT Hub closes the connection
    client = connect_device(hub, "rude")
    client.send_packet(Publish("devices/rude/messages/events/", b"q2", 2, 7))
    assert client.closed_by_hub()
    client.close()
    # a second CONNECT on a live connection
    client = connect_device(hub, "rude")
    client.send_packet(Connect("rude", "u", b"p", 60, True))
    assert client.closed_by_hub()
    client.close()
    assert hub.telemetry("rude") == []
    assert_bystander_healthy(hub, bystander)


def test_topics_outside_the_namespace(module_hub: HubProcess, bystander) -> None:
    hub = module_hub
    hub.create_device("nosy")
    client = connect_device(hub, "nosy")
    suback = client.subscribe("devices/bystander/messages/devicebound/#", "$iothub/twin/res/#",
                              "some/other/topic", "$iothub/methods/POST/#")
    assert suback.return_codes == [0x80, 1, 0x80, 1]
    # publishing as another device closes the connection, and nothing reaches that device's stream
    before = len(hub.telemetry("bystander"))
    client.send_packet(Publish("devices/bystander/messages/events/", b"spoof", 1, 9))
    assert client.closed_by_hub()
    client.close()
    assert len(hub.telemetry("bystander")) == before
    client = connect_device(hub, "nosy")
    client.send_packet(Publish("$iothub/twin/DELETE/?$rid=1", b"", 0))
    assert client.closed_by_hub()
    client.close()
    assert_bystander_healthy(hub, bystander)


def test_twin_refusals(module_hub: HubProcess, bystander) -> None:
    hub = module_hub
    hub.create_device("twinbad")
    client = connect_device(hub, "twinbad")
    client.subscribe("$iothub/twin/res/#")
    cases = [
        (b"{not json", "bad-json"),
        (b"[1, 2]", "not-object"),
        (json.dumps({"a.b": 1}).encode(), "dotted-key"),
        (json.dumps({"big": "x" * 4000, **{f"k{i}": "y" * 4000 for i in range(8)}}).encode(), "too-big"),
        (json.dumps({"d": {"1": {"2": {"3": {"4": {"5": {"6": {"7": {"8": {"9": {"10": {"11": 1}}}}}}}}}}}}).encode(),
         "too-deep"),
        # Past the JSON parser's own stack: answered 400 like the rest, the connection kept.
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "parser-deep"),
    ]
    for payload, rid in cases:
        client.publish(f"$iothub/twin/PATCH/properties/reported/?$rid={rid}", payload)
        res = client.expect(Publish)
        assert res.topic == f"$iothub/twin/res/400/?$rid={rid}", (rid, res.topic)
    client.publish("$iothub/twin/PATCH/properties/reported/?$rid=ok", b'{"fine": true}')
    res = client.expect(Publish)
    assert res.topic == "$iothub/twin/res/204/?$rid=ok&$version=2"
    assert hub.get_twin("twinbad")["properties"]["reported"]["fine"] is True
    # invalid JSON and over-limit patches from the service side are refused with 400
    for bad in (b'{"properties": {"desired": ', b"\xff\xfe", b'["not", "an", "object"]',
                b'{"properties": {"desired": ' + b'{"a":' * 5000 + b"1" + b"}" * 5002):
        with pytest.raises(HubRequestError) as err:
            hub.client.request("PATCH", "/twins/twinbad", raw_body=bad)
        assert err.value.status == 400
    with pytest.raises(HubRequestError) as err:
        hub.client.request("PATCH", "/twins/twinbad", {"properties": {"desired": {"$bad": 1}}})
    assert err.value.status == 400
    with pytest.raises(HubRequestError) as err:
        hub.update_twin("twinbad", {"tags": {"t": "x" * 4000, "u": "x" * 4000, "v": "x" * 400}})
    assert err.value.status == 400
    assert hub.get_twin("twinbad")["tags"] == {}
    client.close()
    assert_bystander_healthy(hub, bystander)


def test_desired_patch_goes_only_to_its_device(module_hub: HubProcess, bystander) -> None:
    hub = module_hub
    hub.create_device("twin-a")
    client = connect_device(hub, "twin-a")
    client.subscribe("$iothub/twin/PATCH/properties/desired/#", "$iothub/twin/res/#")
    hub.update_twin("twin-a", {"properties": {"desired": {"rate": 7}}})
    notice = client.expect(Publish)
    assert notice.topic == "$iothub/twin/PATCH/properties/desired/?$version=2"
    assert json.loads(notice.payload) == {"rate": 7, "$version": 2}
    client.publish("$iothub/twin/GET/?$rid=g1")
    res = client.expect(Publish)
    assert res.topic == "$iothub/twin/res/200/?$rid=g1"
    assert json.loads(res.payload)["desired"] == {"rate": 7, "$version": 2}
    # the bystander got none of this
    bystander.publish("$iothub/twin/GET/?$rid=b1")
    res = bystander.expect(Publish)
    assert res.topic.startswith("$iothub/twin/res/200/?$rid=b1")
    assert "rate" not in json.loads(res.payload)["desired"]
    client.close()


def test_methods_answered_and_unknown(module_hub: HubProcess, bystander) -> None:
    import threading

    hub = module_hub
    hub.create_device("meth")
    client = connect_device(hub, "meth")
    client.subscribe("$iothub/methods/POST/#")
    results: dict[str, object] = {}
    caller = threading.Thread(target=lambda: results.update(
        r=hub.invoke_method("meth", "blink", {"n": 2}, timeout=10)))
    caller.start()
    req = client.expect(Publish, timeout=10)
    assert req.topic.startswith("$iothub/methods/POST/blink/?$rid=")
    assert json.loads(req.payload) == {"n": 2}
    rid = req.topic.split("$rid=")[1]
    # an answer to an unknown rid is ignored, the real one completes the call
    client.publish("$iothub/methods/res/200/?$rid=bogus", b"{}")
    client.publish(f"$iothub/methods/res/201/?$rid={rid}", b'{"blinked": 2}')
    caller.join(10)
    assert results["r"] == {"status": 201, "payload": {"blinked": 2}}
    with pytest.raises(HubRequestError) as err:
        hub.invoke_method("bystander", "anything", timeout=5)  # connected, not subscribed
    assert err.value.status == 404
    with pytest.raises(HubRequestError) as err:
        hub.invoke_method("meth", "x", timeout=1)  # IoT Hub's minimum is 5 s
    assert err.value.status == 400
    client.close()


def test_method_timeout_is_504(module_hub: HubProcess) -> None:
    hub = module_hub
    hub.create_device("silent")
    client = connect_device(hub, "silent")
    client.subscribe("$iothub/methods/POST/#")
    started = time.monotonic()
    with pytest.raises(HubRequestError) as err:
        hub.invoke_method("silent", "wait", timeout=5)
    assert err.value.status == 504
    assert 4.5 <= time.monotonic() - started < 9
    client.close()


def test_c2d_limits_ttl_and_ack(module_hub: HubProcess) -> None:
    hub = module_hub
    hub.create_device("c2d-dev")
    for i in range(50):
        hub.send_c2d("c2d-dev", f"m{i}")
    with pytest.raises(HubRequestError) as err:
        hub.send_c2d("c2d-dev", "one too many")
    assert err.value.status == 403 and err.value.code == "DeviceMaximumQueueDepthExceeded"
    with pytest.raises(HubRequestError) as err:
        hub.send_c2d("c2d-dev", b"x" * (64 * 1024 + 1))
    assert err.value.status == 413
    hub.client.request("DELETE", "/devices/c2d-dev/commands")
    hub.send_c2d("c2d-dev", "first", {"a": "1"})
    client = connect_device(hub, "c2d-dev", clean_session=False)
    client.subscribe("devices/c2d-dev/messages/devicebound/#")
    msg = client.expect(Publish)
    assert msg.payload == b"first" and msg.qos == 1
    assert "a=1" in msg.topic and msg.topic.startswith("devices/c2d-dev/messages/devicebound/")
    # not acknowledged: redelivered on the next connection (clean session 0 keeps the subscription)
    client.close()
    client = connect_device(hub, "c2d-dev", clean_session=False)
    again = client.expect(Publish)
    assert again.payload == b"first"
    client.send_packet(Puback(again.packet_id))
    client.send_packet(Pingreq())
    assert client.expect(Pingresp) == Pingresp()
    assert hub.client.get_device("c2d-dev")["cloudToDeviceMessageCount"] == 0
    client.close()


def test_new_connection_drops_the_old(module_hub: HubProcess) -> None:
    hub = module_hub
    hub.create_device("twice")
    first = connect_device(hub, "twice")
    second = connect_device(hub, "twice")
    assert first.closed_by_hub()
    assert second.publish("devices/twice/messages/events/", b"still here") is not None
    second.close()
    first.close()


def test_token_expiry_and_keepalive_close_the_connection(module_hub: HubProcess) -> None:
    hub = module_hub
    hub.create_device("timed")
    client = connect_device(hub, "timed", ttl=2, keepalive=600)
    started = time.monotonic()
    assert client.closed_by_hub(timeout=6)
    assert 0.5 < time.monotonic() - started < 4
    client.close()
    client = connect_device(hub, "timed", keepalive=1)
    started = time.monotonic()
    assert client.closed_by_hub(timeout=6)
    assert 1.2 < time.monotonic() - started < 3.5  # 1.5 x keepalive
    client.close()


def test_a_graceful_disconnect_is_no_error(module_hub: HubProcess) -> None:
    """DISCONNECT closes the connection cleanly: no handler failure in the hub's log (a closed
    TLS transport's write buffer was read after it and raised, for a third of disconnects)."""
    from localhub.protocol.mqtt_codec import Disconnect

    hub = module_hub
    hub.create_device("polite")
    before = hub.log_path.read_text(errors="replace").count("connection handler failed")
    for _ in range(20):
        client = connect_device(hub, "polite")
        client.send_packet(Disconnect())
        client.close()  # at once, as the official SDK does
        deadline = time.monotonic() + 5
        while hub.client.get_device("polite")["connectionState"] != "Disconnected":
            assert time.monotonic() < deadline, "the hub did not see the disconnect"
            time.sleep(0.02)
    assert hub.log_path.read_text(errors="replace").count("connection handler failed") == before


def test_a_will_is_sent_as_telemetry_when_the_link_breaks_and_not_after_disconnect(module_hub: HubProcess) -> None:
    from localhub.protocol.mqtt_codec import Disconnect

    hub = module_hub
    hub.create_device("willing")
    key = hub.device_key("willing")

    def connect_with_will(payload: bytes) -> RawClient:
        client = raw(hub)
        client.send_packet(Connect("willing", f"{hub.hostname}/willing/{API}",
                                   device_token(hub.hostname, "willing", key).encode(), 60, True,
                                   will_topic="devices/willing/messages/events/kind=lastgasp",
                                   will_payload=payload))
        assert client.recv().return_code == 0
        return client

    polite = connect_with_will(b"said goodbye")
    polite.send_packet(Disconnect())
    polite.close()
    broken = connect_with_will(b"power lost")
    broken.sock.close()  # no DISCONNECT: the link just ends
    (will,) = hub.wait_telemetry("willing", 1, 10)
    assert will["body"] == "power lost"
    assert will["properties"] == {"kind": "lastgasp", "iothub-MessageType": "Will"}
    time.sleep(0.5)
    assert [m["body"] for m in hub.telemetry("willing")] == ["power lost"]


def test_connections_that_never_send_connect_are_capped(tmp_path) -> None:
    """Past --max-unauthenticated idle sockets, the one that waited longest is closed for each
    newcomer: the flood holds at most the cap, a device connected before is served on, and a
    device connecting during the flood gets in at once."""
    with HubProcess(tmp_path / "hub", serve_args=("--max-unauthenticated", "3")) as hub:
        hub.create_device("steady")
        hub.create_device("during")
        during_key = hub.device_key("during")
        steady = connect_device(hub, "steady", keepalive=600)
        idle = [raw(hub) for _ in range(3)]
        time.sleep(0.3)  # let the hub accept them
        extra = raw(hub)
        started = time.monotonic()
        assert idle[0].closed_by_hub(timeout=3) and time.monotonic() - started < 2  # not CONNECT_TIMEOUT
        started = time.monotonic()
        during = connect_device(hub, "during", key=during_key)
        assert time.monotonic() - started < 2
        assert idle[1].closed_by_hub(timeout=3)  # made room for it
        assert during.publish("devices/during/messages/events/", b"in the flood") is not None
        assert steady.publish("devices/steady/messages/events/", b"during the flood") is not None
        for client in (*idle, extra):
            client.close()
        assert "turned away" in hub.log_path.read_text()
        during.close()
        steady.close()
