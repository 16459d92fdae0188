"""Transport, session and upload checks that run inside the MicroPython VM (and on CPython).

No pytest and no assert: each check raises Failure. Heap figures come from ``gc.mem_alloc()``
where the port has it. In the WebAssembly port, objects allocated during one ``runPython``
call are only collectable after that call returns, so heap is sampled between calls.
"""

import gc
import json
import os

from lib_fakes import FakeClock, FakeHub, FakeSocket
from iothub.client import CONNECTED, IoTHubClient
from iothub.mqtt import MQTTClient, MQTTProtocolError
from iothub.upload import upload_file
from lib_pure_checks import Failure, _eq

import lib_vectors

CONNACK = b"\x20\x02\x00\x00"


def _mem():
    gc.collect()
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0


def check_mqtt_bytes():
    sock = FakeSocket(CONNACK)
    c = MQTTClient("d", "hub", 8883, user="u", password="p", keepalive=60, sock_factory=lambda h, p: sock)
    c.connect()
    _eq(bytes(sock.take_sent()), b"\x10\x13\x00\x04MQTT\x04\xc2\x00\x3c\x00\x01d\x00\x01u\x00\x01p", "CONNECT")
    _eq(c.publish("t", b"hi", qos=1), 1, "pid")
    _eq(sock.take_sent(), b"\x32\x07\x00\x01t\x00\x01hi", "PUBLISH QoS 1")
    got = []
    c.set_callback(lambda t, m: got.append((t, m)))
    packet = b"\x32\x0c\x00\x03a/b\x00\x07hello"
    for piece in (packet[:1], packet[1:4], packet[4:10]):
        sock.feed(piece)
        _eq(c.check_msg(), None, "partial")
    sock.feed(packet[10:] + b"\x40\x02\x00\x01" + b"\xd0\x00")
    c.check_msg()
    _eq(got, [(b"a/b", b"hello")], "split PUBLISH")
    _eq((c.inflight(), c.pings_unanswered), (0, 0), "PUBACK + PINGRESP")
    _eq(sock.take_sent(), b"\x40\x02\x00\x07", "PUBACK sent")
    payload = b"x" * 20000
    sock2 = FakeSocket(CONNACK)
    big = MQTTClient("d", "hub", 8883, bufsize=32768, sock_factory=lambda h, p: sock2)
    big.connect()
    got2 = []
    big.set_callback(lambda t, m: got2.append(len(m)))
    sock2.feed(b"\x30\xa3\x9c\x01\x00\x01t" + payload[:5000], payload[5000:])
    big.check_msg()
    _eq(got2, [20000], "3-byte remaining length")
    sock.feed(b"\x30\xff\xff\xff\xff\x7f")
    try:
        c.check_msg()
    except MQTTProtocolError:
        pass
    else:
        raise Failure("5-byte remaining length accepted")


def check_session():
    clock = FakeClock()
    hub = FakeHub(clock)
    cs = "HostName=h.net;DeviceId=dev1;SharedAccessKey=" + lib_vectors.KEY
    c = IoTHubClient(cs, transport=hub.factory, clock=clock, jitter=lambda n: 0, queue_len=2)
    seen = []
    c.on_desired(lambda d, v, full: seen.append((v, full)))
    c.on_method("ping", lambda p: (200, {"pong": p}))
    c.send_telemetry(b"a")
    c.send_telemetry(b"b")
    c.send_telemetry(b"c")
    hub.twin = {"desired": {"x": 1, "$version": 3}, "reported": {}}
    c.connect()
    _eq(c.state, CONNECTED, "connected")
    _eq([m for t, m, q in hub.published if t.startswith("devices/")], [b"b", b"c"], "queue drops oldest")
    _eq(c.stats()["dropped"], 1, "drop count")
    hub.deliver("$iothub/methods/POST/ping/?$rid=9", b"1")
    hub.deliver("$iothub/methods/POST/nope/?$rid=10", b"")
    hub.deliver("$iothub/twin/PATCH/properties/desired/?$version=2", b'{"x": 0}')
    c.poll()
    _eq(seen, [(3, True)], "twin synced, stale patch ignored")
    res = [(t, json.loads(m)) for t, m in hub.published_on("$iothub/methods/res/")]
    _eq(res, [("$iothub/methods/res/200/?$rid=9", {"pong": 1}), ("$iothub/methods/res/404/?$rid=10", {"message": "unknown method: nope"})], "methods")
    clock.advance(3300 * 1000)
    c.poll()
    _eq(len(hub.conns), 2, "token renewed by reconnecting")


def _scripted_upload(path, chunk, blocks_expected, track):
    """Upload through fake sockets: the hub's and storage's answers are scripted in advance."""
    answer = json.dumps(
        {
            "correlationId": "c1",
            "hostName": "127.0.0.1:10000",
            "containerName": "devstoreaccount1/up",
            "blobName": "dev1/x",
            "sasToken": "?sv=1&sig=2",
        }
    ).encode()
    hub_sock = FakeSocket(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer,
        b"HTTP/1.1 204 No Content\r\n\r\n",
        keep=False,
    )
    created = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    blob_sock = FakeSocket(*([created] * (blocks_expected + 1)), keep=False)
    socks = [hub_sock, blob_sock]
    result = upload_file(
        path, "x", host="hub:443", device_id="dev1", token="SharedAccessSignature sr=x",
        chunk_size=chunk, clock=FakeClock(), sock_factory=lambda h, p: socks.pop(0), progress=track,
    )
    _eq(result["isSuccess"], True, "upload ok")
    return blob_sock.nsent


def upload_once(size, chunk=1024):
    """Write a ``size``-byte file and upload it through scripted sockets; returns bytes sent."""
    path = "/tmp/up.bin"
    with open(path, "wb") as f:
        block = b"\x5a" * 1024
        for _ in range(size // 1024):
            f.write(block)
    try:
        sent = _scripted_upload(path, chunk, size // chunk, None)
    finally:
        os.remove(path)
    if sent < size:
        raise Failure("only %d bytes sent" % sent)
    return sent


def check_upload():
    upload_once(4096)


ALL = [check_mqtt_bytes, check_session, check_upload]


def run_all():
    out = {}
    for check in ALL:
        out[check.__name__] = check()
    return out
