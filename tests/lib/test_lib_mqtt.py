"""MQTT 3.1.1 client, byte for byte against packets written out by hand from the spec."""

import inspect

import pytest

from lib_fakes import FakeSocket
from iothub.mqtt import MQTTClient, MQTTException, MQTTProtocolError

CONNACK_OK = bytes.fromhex("20020000")


def client(*chunks, bufsize=256, **kw):
    sock = FakeSocket(*chunks)
    c = MQTTClient("d", "hub", 8883, user="u", password="p", keepalive=60, bufsize=bufsize, sock_factory=lambda h, p: sock, **kw)
    return c, sock


def connected(bufsize=256, **kw):
    c, sock = client(CONNACK_OK, bufsize=bufsize, **kw)
    c.connect()
    sock.take_sent()
    return c, sock


def test_interface_matches_umqtt_simple():
    params = list(inspect.signature(MQTTClient.__init__).parameters)
    assert params[:9] == ["self", "client_id", "server", "port", "user", "password", "keepalive", "ssl", "ssl_params"]
    for name in ("connect", "disconnect", "ping", "publish", "subscribe", "set_callback", "set_last_will", "wait_msg", "check_msg"):
        assert callable(getattr(MQTTClient, name))
    assert list(inspect.signature(MQTTClient.publish).parameters) == ["self", "topic", "msg", "retain", "qos"]
    assert list(inspect.signature(MQTTClient.subscribe).parameters) == ["self", "topic", "qos"]
    assert list(inspect.signature(MQTTClient.connect).parameters) == ["self", "clean_session"]


def test_connect_packet_with_credentials_keepalive_clean_session():
    c, sock = client(CONNACK_OK)
    assert c.connect(clean_session=True) == 0
    # 3.1: fixed header 10, remaining length 19 = 10 (variable header) + 3 + 3 + 3 (payload)
    assert bytes(sock.sent) == bytes.fromhex(
        "1013"  # CONNECT, remaining length 19
        "00044d515454"  # protocol name "MQTT"
        "04"  # level 4 (3.1.1)
        "c2"  # flags: user name, password, clean session
        "003c"  # keepalive 60 s
        "000164"  # client id "d"
        "000175"  # user name "u"
        "000170"  # password "p"
    )


def test_connect_iot_hub_style_no_clean_session_and_session_present():
    user = "hub.azure-devices.net/dev1/?api-version=2021-04-12"
    sock = FakeSocket(bytes.fromhex("20020100"))
    c = MQTTClient("dev1", "hub.azure-devices.net", 8883, user=user, password="SharedAccessSignature sr=x", keepalive=240, sock_factory=lambda h, p: sock)
    assert c.connect(clean_session=False) == 1
    rl = 10 + (2 + 4) + (2 + len(user)) + (2 + 26)
    assert rl == 96
    assert bytes(sock.sent) == (
        b"\x10\x60\x00\x04MQTT\x04\xc0\x00\xf0" + b"\x00\x04dev1" + b"\x00\x32" + user.encode() + b"\x00\x1aSharedAccessSignature sr=x"
    )


@pytest.mark.parametrize("rc", [1, 2, 3, 4, 5])
def test_connack_refused_raises_with_code_and_closes(rc):
    c, sock = client(bytes([0x20, 0x02, 0x00, rc]))
    with pytest.raises(MQTTException) as info:
        c.connect()
    assert info.value.code == rc and info.value.args[0] == rc
    assert sock.closed and c.sock is None


def test_publish_qos0_and_qos1_with_packet_ids():
    c, sock = connected()
    assert c.publish("t", b"hi") is None
    assert sock.take_sent() == bytes.fromhex("3005" "000174" "6869")
    assert c.publish(b"t", "hi", qos=1) == 1
    assert sock.take_sent() == bytes.fromhex("3207" "000174" "0001" "6869")
    assert c.publish("t", b"", retain=True, qos=1) == 2
    assert sock.take_sent() == bytes.fromhex("3305" "000174" "0002")
    assert c.inflight() == 2


def test_puback_matched_by_packet_id():
    c, sock = connected()
    acked = []
    c.set_puback_callback(acked.append)
    p1 = c.publish("t", b"a", qos=1)
    p2 = c.publish("t", b"b", qos=1)
    sock.feed(bytes.fromhex("40020002"), bytes.fromhex("40020009"))  # p2's PUBACK, then an unknown id
    c.check_msg()
    assert acked == [p2] and c.inflight() == 1
    sock.feed(bytes.fromhex("40020001"))
    c.check_msg()
    assert acked == [p2, p1] and c.inflight() == 0


def test_inflight_window_is_bounded():
    c, sock = connected(max_inflight=2)
    c.publish("t", b"a", qos=1)
    c.publish("t", b"b", qos=1)
    with pytest.raises(Exception, match="in flight"):
        c.publish("t", b"c", qos=1)


def test_subscribe_waits_for_suback_and_returns_granted_qos():
    c, sock = connected()
    c.check_msg()  # leaves the socket non-blocking
    assert sock.blocking is False
    sock.feed(bytes.fromhex("9003000101"))
    assert c.subscribe("a/b", qos=1) == 1
    assert sock.blocking is True and sock.timeout == 30  # blocking, but never without a timeout
    assert sock.take_sent() == bytes.fromhex("8208" "0001" "0003612f62" "01")


def test_subscribe_failure_0x80_raises():
    c, sock = connected()
    sock.feed(bytes.fromhex("9003000180"))
    with pytest.raises(MQTTException) as info:
        c.subscribe("$iothub/forbidden/#")
    assert info.value.code == 0x80


def test_messages_arriving_during_subscribe_reach_the_callback():
    c, sock = connected()
    got = []
    c.set_callback(lambda t, m: got.append((t, m)))
    sock.feed(bytes.fromhex("3005000174" "6869"), bytes.fromhex("9003000100"))
    assert c.subscribe("t") == 0
    assert got == [(b"t", b"hi")]


def test_ping_and_pingresp():
    c, sock = connected()
    c.ping()
    c.ping()
    assert sock.take_sent() == bytes.fromhex("c000c000")
    assert c.pings_unanswered == 2
    sock.feed(bytes.fromhex("d000"))
    assert c.check_msg() == 0xD0
    assert c.pings_unanswered == 0


def test_disconnect_sends_packet_and_closes():
    c, sock = connected()
    c.disconnect()
    assert bytes(sock.sent) == bytes.fromhex("e000") and sock.closed


def test_publish_split_across_several_reads():
    c, sock = connected()
    got = []
    c.set_callback(lambda t, m: got.append((t, m)))
    packet = bytes.fromhex("320c" "0003612f62" "0007" "68656c6c6f")  # QoS 1 "a/b" pid 7 "hello"
    for piece in (packet[:1], packet[1:2], packet[2:6], packet[6:9]):
        sock.feed(piece)
        assert c.check_msg() is None  # nothing complete yet, and no blocking
        assert got == []
    sock.feed(packet[9:])
    assert c.check_msg() == 0x30
    assert got == [(b"a/b", b"hello")]
    assert sock.take_sent() == bytes.fromhex("40020007")  # PUBACK with the same id


def test_a_callback_returning_false_leaves_a_qos1_publish_unacknowledged():
    c, sock = connected()
    answers = [False, None]
    c.set_callback(lambda t, m: answers.pop(0))
    packet = bytes.fromhex("320c" "0003612f62" "0007" "68656c6c6f")  # QoS 1 "a/b" pid 7 "hello"
    sock.feed(packet)
    assert c.check_msg() == 0x30
    assert sock.take_sent() == b""  # not taken: the server sends it again on the next connection
    sock.feed(packet)
    assert c.check_msg() == 0x30
    assert sock.take_sent() == bytes.fromhex("40020007")  # anything but False: acknowledged


def test_the_receive_buffer_is_lent_only_between_packets_and_nothing_is_read_meanwhile():
    c, sock = connected()
    got = []
    c.set_callback(lambda t, m: got.append(m))
    packet = bytes.fromhex("3008" "0003612f62" "686921")  # QoS 0 "a/b" "hi!"
    sock.feed(packet[:4])
    assert c.check_msg() is None
    assert c.lend(True) is None  # half a packet is in the buffer: not lent
    sock.feed(packet[4:])
    assert c.check_msg() == 0x30 and got == [b"hi!"]
    buf = c.lend(True)
    assert buf is c._buf
    buf[:] = b"\xff" * len(buf)  # the borrower scribbles over it
    sock.feed(packet)
    assert c.check_msg() is None and got == [b"hi!"]  # lent: the packet waits in the socket
    c.lend(False)
    assert c.check_msg() == 0x30 and got == [b"hi!", b"hi!"]


def test_two_packets_in_one_read():
    c, sock = connected()
    got = []
    c.set_callback(lambda t, m: got.append(m))
    sock.feed(bytes.fromhex("3004000174" "31") + bytes.fromhex("3004000174" "32") + bytes.fromhex("d000"))
    c.pings_unanswered = 1
    assert c.check_msg() == 0xD0
    assert got == [b"1", b"2"] and c.pings_unanswered == 0


def test_remaining_length_of_two_bytes():
    c, sock = connected(bufsize=512)
    got = []
    c.set_callback(lambda t, m: got.append(m))
    payload = bytes(range(200))
    # remaining length 2 + 1 + 200 = 203 = 0xcb 0x01 (7 bits per byte, low group first)
    sock.feed(b"\x30\xcb\x01\x00\x01t" + payload)
    c.check_msg()
    assert got == [payload]
    c.publish("t", payload)
    assert sock.take_sent() == b"\x30\xcb\x01\x00\x01t" + payload


def test_remaining_length_of_three_bytes():
    c, sock = connected(bufsize=32768)
    got = []
    c.set_callback(lambda t, m: got.append(m))
    payload = b"x" * 20000
    # 20003 = 35 + 28*128 + 1*16384 -> a3 9c 01
    packet = b"\x30\xa3\x9c\x01\x00\x01t" + payload
    sock.feed(packet[:5000], packet[5000:17000], packet[17000:])
    c.check_msg()
    assert got == [payload]
    c.publish("t", payload)
    assert sock.take_sent() == packet


@pytest.mark.parametrize(
    "data,match",
    [
        ("30ffffffff7f", "longer than 4 bytes"),
        ("4003000100", "malformed PUBACK"),
        ("41020001", "reserved flags"),
        ("10020000", "unexpected packet type 0x10"),
        ("3605000174" "6869", "QoS 3"),
        ("3405000174" "6869", "QoS 2"),
        ("30030009" "74", "topic longer than the packet"),
        ("32050001740000", "packet id 0"),
        ("d00100", "malformed PINGRESP"),
        ("20020000", "second CONNACK"),
        ("90030001" "07", "bad SUBACK return code"),
    ],
)
def test_malformed_packets_raise_a_clear_error(data, match):
    c, sock = connected()
    sock.feed(bytes.fromhex(data))
    with pytest.raises(MQTTProtocolError, match=match):
        c.check_msg()


@pytest.mark.parametrize("data,match", [("3005000174" "6869", "first packet is not CONNACK"), ("2003000000", "malformed CONNACK")])
def test_bad_first_packet_fails_connect(data, match):
    c, sock = client(bytes.fromhex(data))
    with pytest.raises(MQTTProtocolError, match=match):
        c.connect()
    assert sock.closed


def test_publish_bigger_than_buffer_is_acked_dropped_and_reported():
    c, sock = connected(bufsize=64)
    got, big = [], []
    c.set_callback(lambda t, m: got.append(m))
    c.set_oversize_callback(lambda t, size: big.append((t, size)))
    payload = b"z" * 300
    rl = 2 + 3 + 2 + 300
    packet = bytes([0x32, rl & 0x7F | 0x80, rl >> 7]) + b"\x00\x03a/b\x00\x05" + payload
    sock.feed(packet[:40], packet[40:200], packet[200:], bytes.fromhex("3004000174" "6f"))
    c.check_msg()
    assert big == [(b"a/b", rl)] and c.oversize_drops == 1
    assert got == [b"o"]  # the next packet is read normally
    assert sock.take_sent() == bytes.fromhex("40020005")


def test_eof_raises_oserror():
    c, sock = connected()
    sock.eof = True
    with pytest.raises(OSError):
        c.check_msg()


def test_partial_writes_are_completed():
    sock = FakeSocket(CONNACK_OK, max_write=3)
    c = MQTTClient("d", "hub", 8883, user="u", password="p", keepalive=60, sock_factory=lambda h, p: sock)
    c.connect()
    assert bytes(sock.sent).startswith(bytes.fromhex("1013"))
    assert len(sock.sent) == 21


def test_wait_msg_blocks_until_a_packet_and_reports_timeouts():
    c, sock = connected()
    sock.feed(bytes.fromhex("d0"), bytes.fromhex("00"))
    assert c.wait_msg() == 0xD0
    assert sock.blocking is True
    with pytest.raises(OSError):
        c.wait_msg()  # nothing scripted: the fake times out like a socket with settimeout
