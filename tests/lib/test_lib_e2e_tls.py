"""IoTHubClient with its own MQTTClient over real TLS sockets (MicroPython-like socket/ssl
modules from mpnet) against mini_hub, which checks SAS tokens independently with stdlib hmac."""

import json
import time

import pytest

import lib_mpnet
import lib_vectors
from iothub import net
from iothub.client import CONNECTED, IoTHubClient
from iothub.errors import AuthError
from lib_mini_hub import MiniHub

HOST = "hub.example.net"


@pytest.fixture
def hub(pki):
    net.use(lib_mpnet.SOCKET, lib_mpnet.SSL)
    h = MiniHub(pki["server.pem"], pki["server.key"], HOST, "dev1", lib_vectors.KEY)
    yield h
    h.close()
    net.use()


def make_client(hub, ca, **kw):
    cs = "HostName=%s;DeviceId=dev1;SharedAccessKey=%s;GatewayHostName=127.0.0.1" % (HOST, lib_vectors.KEY)
    return IoTHubClient(cs, ca=ca, keepalive=60, port=hub.port, **kw)


def poll_until(client, cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met")
        client.poll()
        time.sleep(0.005)  # yield the CPU to the hub's threads; no timing is asserted


def wait_polling(client, hub, kind, where=lambda e: True, timeout=5.0):
    """Poll the client while waiting for the hub to see an event (the device only acts in poll)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        client.poll()
        try:
            return hub.wait(kind, timeout=0.01, where=where)
        except AssertionError:
            pass
    raise AssertionError("no %s event" % kind)


def test_session_over_tls(hub, pki):
    c = make_client(hub, pki["ca.pem"].read_bytes())
    desired = []
    c.on_desired(lambda d, v, full: desired.append((dict(d), v, full)))
    c.on_method("add", lambda p: (200, {"sum": p["a"] + p["b"]}))
    c2d = []
    c.on_c2d(lambda body, props: c2d.append((body, props)))
    hub.twin = {"desired": {"interval": 30, "$version": 7}, "reported": {"$version": 1}}
    c.connect()
    ev = hub.wait("connect")
    assert ev[1:] == ("dev1", HOST + "/dev1/?api-version=2021-04-12", 0xC0, 60)
    poll_until(c, lambda: desired)
    assert desired == [({"interval": 30}, 7, True)]
    assert [t for t, q in hub.conn.subs] == [
        "devices/dev1/messages/devicebound/#",
        "$iothub/methods/POST/#",
        "$iothub/twin/res/#",
        "$iothub/twin/PATCH/properties/desired/#",
    ]

    assert c.send_telemetry(b'{"t": 1}', [("$.ct", "application/json"), ("k", "v w")])
    ev = hub.wait("publish", where=lambda e: e[1].startswith("devices/"))
    assert ev[1:] == ("devices/dev1/messages/events/%24.ct=application%2Fjson&k=v%20w", b'{"t": 1}')
    poll_until(c, lambda: c.stats()["inflight"] == 0)  # PUBACK matched

    answers = []
    c.patch_reported({"fw": "1.0"}, lambda status, version: answers.append((status, version)))
    poll_until(c, lambda: answers)
    assert answers == [(204, 2)] and hub.twin["reported"]["fw"] == "1.0"

    hub.conn.publish("$iothub/methods/POST/add/?$rid=42", b'{"a": 2, "b": 3}')
    ev = wait_polling(c, hub, "publish", where=lambda e: e[1].startswith("$iothub/methods/res/"))
    assert ev[1] == "$iothub/methods/res/200/?$rid=42" and json.loads(ev[2]) == {"sum": 5}

    hub.conn.publish("$iothub/twin/PATCH/properties/desired/?$version=8", b'{"interval": 5, "$version": 8}')
    poll_until(c, lambda: len(desired) == 2)
    assert desired[1] == ({"interval": 5}, 8, False)

    hub.conn.publish("devices/dev1/messages/devicebound/%24.mid=m1&color=red", b"hello", qos=1)
    poll_until(c, lambda: c2d)
    assert c2d == [(b"hello", {"$.mid": "m1", "color": "red"})]
    assert wait_polling(c, hub, "puback")[1] == 1

    assert c.get_twin()["reported"]["fw"] == "1.0"
    c.disconnect()
    hub.wait("closed")


def test_reconnects_after_the_hub_drops_the_connection(hub, pki):
    c = make_client(hub, pki["ca.pem"].read_bytes(), min_backoff_ms=10, max_backoff_ms=50, jitter_ms=0)
    c.connect()
    hub.wait("connect")
    first = hub.conn
    first.drop()  # the hub closes the connection (as it does when throttling)
    poll_until(c, lambda: hub.conn is not first and c.state == CONNECTED)
    assert c.connects == 2
    c.send_telemetry(b"again")
    assert hub.wait("publish", where=lambda e: e[1].startswith("devices/"))[2] == b"again"
    c.disconnect()


def test_untrusted_server_certificate_is_refused(hub, pki):
    c = make_client(hub, pki["other-ca.pem"].read_bytes())
    with pytest.raises(OSError):  # ssl.SSLCertVerificationError
        c.connect()
    assert c.state != CONNECTED


def test_expired_token_gets_connack_5_and_auth_error(hub, pki):
    class PastClock:
        # An RTC that was never set: the token expired long ago.
        def __init__(self):
            from iothub.clock import SystemClock

            self._c = SystemClock()
            self.ticks_ms, self.ticks_diff, self.ticks_add, self.sleep_ms = (
                self._c.ticks_ms, self._c.ticks_diff, self._c.ticks_add, self._c.sleep_ms)

        def time(self):
            return 946684800  # 2000-01-01

    c = make_client(hub, pki["ca.pem"].read_bytes(), clock=PastClock())
    with pytest.raises(AuthError) as info:
        c.connect()
    assert info.value.code == 5


def test_silent_server_times_out_instead_of_hanging():
    import socket

    from iothub.mqtt import MQTTClient

    net.use(lib_mpnet.SOCKET, lib_mpnet.SSL)
    server = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) but never answers
    try:
        c = MQTTClient("d", "127.0.0.1", server.getsockname()[1], timeout=0.3)
        start = time.monotonic()
        with pytest.raises(OSError):
            c.connect()
        assert time.monotonic() - start < 5
    finally:
        server.close()
        net.use()
