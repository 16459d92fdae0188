"""Pure layers of the hub: MQTT codec, SAS, topics, twin documents, query language."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from localhub import query
from localhub.protocol import auth, topics, twin
from localhub.protocol.mqtt_codec import (
    Connack,
    Connect,
    Disconnect,
    MalformedPacket,
    MqttError,
    PacketReader,
    PacketTooLarge,
    Pingreq,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Unsubscribe,
    encode,
)
from localhub.protocol.rights import Policy, Right

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 ASCII bytes


# --- codec ----------------------------------------------------------------------------------
@pytest.mark.parametrize("packet", [
    Connect("dev1", "hub/dev1/?api-version=2021-04-12", b"SharedAccessSignature x", 60, False),
    Connack(True, 0),
    Publish("devices/d/messages/events/a=b", b"\x00\xffbody", 1, 513),
    Publish("t", b"", 0),
    Puback(65535),
    Subscribe(7, [("$iothub/twin/res/#", 1), ("a/b", 0)]),
    Suback(7, [1, 0x80]),
    Unsubscribe(9, ["x"]),
    Pingreq(),
    Disconnect(),
])
def test_codec_round_trip_byte_by_byte(packet) -> None:
    reader = PacketReader()
    data = encode(packet)
    for i in range(len(data)):
        assert reader.next_packet() is None
        reader.feed(data[i:i + 1])
    assert reader.next_packet() == packet
    assert reader.pending() == 0


def test_codec_known_bytes() -> None:
    # MQTT 3.1.1 PINGREQ and a 200-byte remaining length (two length bytes: 0xC8 0x01)
    assert encode(Pingreq()) == b"\xc0\x00"
    data = encode(Publish("t", b"x" * 197, 0))  # 2 + 1 topic bytes + 197
    assert data[:3] == b"\x30\xc8\x01"


def test_codec_refusals() -> None:
    reader = PacketReader(max_packet=1000)
    reader.feed(b"\x30\xe9\x07")  # announces 1001 bytes
    with pytest.raises(PacketTooLarge):
        reader.next_packet()
    for bad in (b"\x82\x02\x00\x01",            # SUBSCRIBE with wrong flags
                b"\x80\x02\x00\x01",            # SUBSCRIBE without its 0b0010 flags
                b"\x36\x05\x00\x01t\x00\x01",    # QoS 3
                b"\x32\x05\x00\x01t\x00\x00",    # packet id 0
                b"\x30\x04\x00\x01+x",           # wildcard in PUBLISH topic
                b"\xc0\x01\x00",                 # PINGREQ with a body
                b"\x30\xff\xff\xff\xff\x01"):    # five length bytes
        r = PacketReader()
        r.feed(bad)
        with pytest.raises(MalformedPacket):
            r.next_packet()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_codec_never_fails_unexpectedly(data: bytes) -> None:
    reader = PacketReader(max_packet=4096)
    reader.feed(data)
    try:
        reader.packets()
    except MqttError:
        pass


# --- SAS ------------------------------------------------------------------------------------
def test_sas_generate_and_verify() -> None:
    names = frozenset({"hub.local", "127.0.0.5"})
    token = auth.generate_sas("hub.local/devices/d1", KEY, 2000)
    assert auth.verify_device_token(token, "d1", ["", KEY], names, now=1999).expiry == 2000
    with pytest.raises(auth.AuthError, match="expired"):
        auth.verify_device_token(token, "d1", [KEY], names, now=2000)
    with pytest.raises(auth.AuthError, match="resource"):
        auth.verify_device_token(token, "d2", [KEY], names, now=0)
    with pytest.raises(auth.AuthError, match="resource"):
        auth.verify_device_token(token, "d1", [KEY], frozenset({"other"}), now=0)
    tampered = token.replace("se=2000", "se=3000")
    with pytest.raises(auth.AuthError, match="signature"):
        auth.verify_device_token(tampered, "d1", [KEY], names, now=0)
    svc = auth.generate_sas("127.0.0.5:443", KEY, 2000, "iothubowner")
    owner = {"iothubowner": Policy("iothubowner", KEY, Right.ALL)}
    assert auth.verify_service_token(svc, owner, names, 0).key_name == "iothubowner"
    with pytest.raises(auth.AuthError, match="policy"):
        auth.verify_service_token(svc, {"service": Policy("service", KEY, Right.SERVICE_CONNECT)}, names, 0)
    for junk in ("", "Bearer x", "SharedAccessSignature sr=a&sig=b", "SharedAccessSignature sr=a&sig=b&se=x"):
        with pytest.raises(auth.AuthError):
            auth.parse_sas(junk)


def test_sas_matches_azure_sdk_token() -> None:
    # the device SDK quotes the resource with quote(safe=""), the service SDK with quote_plus
    from azure.iot.device.common.auth.sastoken import RenewableSasToken
    from azure.iot.device.common.auth.signing_mechanism import SymmetricKeySigningMechanism

    sdk = RenewableSasToken("hub.local/devices/d 1", SymmetricKeySigningMechanism(KEY), ttl=100)
    names = frozenset({"hub.local"})
    import time as _t
    assert auth.verify_device_token(str(sdk), "d 1", [KEY], names, _t.time()).resource == "hub.local/devices/d 1"


# --- topics ---------------------------------------------------------------------------------
def test_topics() -> None:
    t = topics.parse_telemetry("devices/d/messages/events/%24.ct=application%2Fjson&a=b%20c&flag", "d")
    assert t is not None and t.properties == {"$.ct": "application/json", "a": "b c", "flag": None}
    assert topics.parse_telemetry("devices/e/messages/events/", "d") is None
    with pytest.raises(topics.TopicError):
        topics.parse_telemetry("devices/d/messages/events/a/b", "d")
    assert topics.parse_twin_request("$iothub/twin/GET/?$rid=5") == topics.TwinRequest("GET", "5")
    with pytest.raises(topics.TopicError):
        topics.parse_twin_request("$iothub/twin/GET/")
    assert topics.parse_method_response("$iothub/methods/res/200/?$rid=ab") == topics.MethodResponse(200, "ab")
    with pytest.raises(topics.TopicError):
        topics.parse_method_response("$iothub/methods/res/OK/?$rid=ab")
    assert topics.parse_method_response("$iothub/twin/GET/?$rid=1") is None
    assert topics.subscription_kind("devices/d/messages/devicebound/#", "d") == topics.SUB_C2D
    assert topics.subscription_kind("devices/x/messages/devicebound/#", "d") is None
    bag = {"$.mid": "1", "k y": "v&w"}
    assert topics.decode_property_bag(topics.encode_property_bag(bag)) == bag


# --- twin documents -------------------------------------------------------------------------
def test_twin_merge_and_limits() -> None:
    doc = {"a": 1, "b": {"c": 2, "d": 3}}
    assert twin.merge_patch(doc, {"a": None, "b": {"c": None, "e": 4}, "f": [1, 2]})
    assert doc == {"b": {"d": 3, "e": 4}, "f": [1, 2]}
    assert not twin.merge_patch(doc, {"b": {"d": 3}, "zz": None})
    twin.validate_section({"a": {"b": None}}, patch=True)
    with pytest.raises(twin.TwinError):
        twin.validate_section({"a": None}, patch=False)
    for bad in ({"a.b": 1}, {"$x": 1}, {"a b": 1}, {"": 1}, {"k" * 129: 1}, {"s": "x" * 4097}):
        with pytest.raises(twin.TwinError):
            twin.validate_section(bad, patch=True)
    deep: dict = {"v": 1}
    for _ in range(10):
        deep = {"n": deep}
    twin.validate_section(deep, patch=False)  # 10 objects below the root: allowed
    with pytest.raises(twin.TwinError, match="deeper"):
        twin.validate_section({"n": deep}, patch=False)
    twin.check_size("tags", {"t": "x" * 8000})
    with pytest.raises(twin.TwinError):
        twin.check_size("tags", {"t": "x" * 8200})
    assert twin.iso_now(0.5) == "1970-01-01T00:00:00.500Z"


# --- query language -------------------------------------------------------------------------
TWINS = [
    {"deviceId": "a", "status": "enabled", "tags": {"location": {"plant": "Redmond43", "region": "US"}},
     "properties": {"reported": {"connectivity": {"type": "cellular"}, "freq": 60}}},
    {"deviceId": "b", "status": "disabled", "tags": {"location": {"plant": "Redmond43", "region": "EU"}},
     "properties": {"reported": {"connectivity": "wifi", "freq": 30}}},
    {"deviceId": "c", "status": "enabled", "tags": {}, "properties": {"reported": {}}},
]


@pytest.mark.parametrize("sql,ids", [
    ("SELECT * FROM devices", ["a", "b", "c"]),
    ("SELECT * FROM devices WHERE tags.location.plant = 'Redmond43'", ["a", "b"]),
    ("SELECT * FROM devices WHERE tags.location.plant = 'Redmond43' AND "
     "properties.reported.connectivity.type = 'cellular'", ["a"]),
    ("select * from devices where tags.location.region = 'US' and properties.reported.freq >= 60", ["a"]),
    ("SELECT * FROM devices WHERE properties.reported.connectivity IN ['wired', 'wifi']", ["b"]),
    ("SELECT * FROM devices WHERE properties.reported.connectivity NIN ['wired', 'wifi']", ["a"]),
    ("SELECT * FROM devices WHERE is_defined(properties.reported.connectivity)", ["a", "b"]),
    ("SELECT * FROM devices WHERE NOT is_defined(tags.location)", ["c"]),
    ("SELECT * FROM devices WHERE (status = 'disabled' OR deviceId = 'c') AND deviceId != 'b'", ["c"]),
    ("SELECT * FROM devices WHERE properties.reported.freq > '10'", []),  # no cross-type compare
    ("SELECT TOP 1 * FROM devices WHERE status = \"enabled\"", ["a"]),
    ("SELECT * FROM devices WHERE STARTSWITH(deviceId, 'b')", ["b"]),
])
def test_query_where(sql: str, ids: list[str]) -> None:
    kind, rows = query.run(query.parse(sql), TWINS)
    assert kind == "twin" and [r["deviceId"] for r in rows] == ids


def test_query_projection_and_grouping() -> None:
    kind, rows = query.run(query.parse("SELECT deviceId, tags.location.region AS r FROM devices"), TWINS)
    assert kind == "raw" and rows == [{"deviceId": "a", "r": "US"}, {"deviceId": "b", "r": "EU"}, {"deviceId": "c"}]
    _, rows = query.run(query.parse(
        "SELECT status, COUNT() AS numberOfDevices FROM devices GROUP BY status"), TWINS)
    assert sorted(rows, key=lambda r: r["status"]) == [
        {"status": "disabled", "numberOfDevices": 1}, {"status": "enabled", "numberOfDevices": 2}]
    _, rows = query.run(query.parse("SELECT COUNT() AS n FROM devices"), TWINS)
    assert rows == [{"n": 3}]


@pytest.mark.parametrize("sql", ["", "SELECT", "SELECT * FROM jobs", "SELECT * FROM devices WHERE",
                                 "SELECT * FROM devices WHERE a = ", "SELECT * FROM devices WHERE x(1)",
                                 "SELECT * FROM devices WHERE a = 'unterminated", "DROP TABLE devices"])
def test_query_errors(sql: str) -> None:
    with pytest.raises(query.QueryError):
        query.run(query.parse(sql), TWINS)
