"""The HTTPS port against clients that connect and stall, as an attacker would: request heads
and bodies have deadlines, connections nobody authenticated on are capped, and the log stays
bounded while the devices and the service clients that did authenticate are served on."""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import ssl
import time

from localhub.protocol import auth
from localhub.protocol.mqtt_codec import CONNACK_NOT_AUTHORIZED
from localhub.storage import state
from localhub.support import logcap
from localhub.testing import HubProcess
from localhub_rawclient import RawClient, connect_device


def _tls(hub: HubProcess) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(hub.ca_path))
    sock = ctx.wrap_socket(socket.create_connection((hub.host, hub.https_port), timeout=10),
                           server_hostname=hub.host)
    return sock


def _closed_within(sock: ssl.SSLSocket, seconds: float) -> tuple[bool, bytes]:
    """Read until the hub closes the connection (True, what it sent) or ``seconds`` pass."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    got = b""
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionError, ssl.SSLError):
            return True, got
        if not data:
            return True, got
        got += data
    return False, got


def _owner_token(hub: HubProcess) -> str:
    key = state.load_policies(hub.state_dir)[state.OWNER_POLICY].key
    return auth.generate_sas(hub.host, key, int(time.time()) + 600, state.OWNER_POLICY)


def test_a_request_head_or_body_that_stalls_is_cut_off(tmp_path) -> None:
    with HubProcess(tmp_path / "hub", serve_args=("--head-timeout", "1", "--body-timeout", "1")) as hub:
        half_head = _tls(hub)
        half_head.sendall(b"GET /devices?api-version=2021-04-12 HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed, _ = _closed_within(half_head, 5)
        assert closed and time.monotonic() - started < 3

        silent = _tls(hub)  # connects, says nothing
        assert _closed_within(silent, 5)[0]

        half_body = _tls(hub)
        half_body.sendall(("PATCH /twins/x?api-version=2021-04-12 HTTP/1.1\r\nHost: x\r\n"
                           f"Authorization: {_owner_token(hub)}\r\n"
                           "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"tags\"")
                          .encode())
        closed, answer = _closed_within(half_body, 5)
        assert closed and answer.startswith(b"HTTP/1.1 408 ")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["Message"].startswith("ErrorCode:RequestTimeout;")
        hub.create_device("after-stalls")  # the hub serves on
        assert hub.client.get_device("after-stalls")["deviceId"] == "after-stalls"
        half_head.close(), silent.close(), half_body.close()


def test_connections_nobody_authenticated_on_are_capped(tmp_path) -> None:
    """Past the cap, the connection that waited longest for a valid request is closed for each
    newcomer: a flood holds at most the cap, and clients that authenticate are served through it."""
    args = ("--max-unauthenticated", "4", "--head-timeout", "30")
    with HubProcess(tmp_path / "hub", serve_args=args) as hub:
        hub.create_device("served")
        device = connect_device(hub, "served", keepalive=600)
        ctx = ssl.create_default_context(cafile=str(hub.ca_path))
        headers = {"Authorization": _owner_token(hub)}

        def service_connection() -> http.client.HTTPSConnection:
            conn = http.client.HTTPSConnection(hub.host, hub.https_port, context=ctx, timeout=10)
            conn.request("GET", "/devices/served?api-version=2021-04-12", headers=headers)
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["deviceId"] == "served"
            return conn

        before = service_connection()  # vouched: this keep-alive connection does not count
        idle = [_tls(hub) for _ in range(4)]
        time.sleep(0.3)
        started = time.monotonic()
        extra = _tls(hub)
        assert _closed_within(idle[0], 3)[0] and time.monotonic() - started < 2  # at once
        # while the flood fills the cap: a new client that authenticates gets in, pushing out
        # the longest waiting idle socket; the one from before and the device are served on
        during = service_connection()
        assert _closed_within(idle[1], 3)[0]
        for conn in (before, during):
            conn.request("GET", "/statistics/devices?api-version=2021-04-12", headers=headers)
            assert conn.getresponse().status == 200
        assert device.publish("devices/served/messages/events/", b"during") is not None
        assert "HTTPS connections turned away" in hub.log_path.read_text()
        for sock in (*idle, extra):
            sock.close()
        before.close(), during.close()
        device.close()


def test_a_flood_of_failing_clients_leaves_a_bounded_log(tmp_path) -> None:
    """300 refused MQTT CONNECTs (each logged with its reason) and 300 broken HTTPS requests:
    the first of each kind are in the log, the rest are counted, not written."""
    with HubProcess(tmp_path / "hub", serve_args=("--max-unauthenticated", "8",
                                                  "--head-timeout", "0.5")) as hub:
        hub.create_device("victim")
        before = len(hub.log_path.read_text().splitlines())
        username = f"{hub.host}/victim/?api-version=2021-04-12"
        for i in range(300):
            client = RawClient(hub.host, hub.mqtt_port, str(hub.ca_path))
            connack = client.connect("victim", username, f"SharedAccessSignature sr=x&sig=y&se={i}")
            assert connack is not None and connack.return_code == CONNACK_NOT_AUTHORIZED
            client.sock.close()
            try:
                sock = _tls(hub)
                sock.sendall(b"GARBAGE\r\n\r\n" if i % 2 else b"GET / HTTP/1.1\r\n")
                sock.close()
            except (ConnectionError, ssl.SSLError, socket.timeout):
                pass
        time.sleep(0.5)
        lines = hub.log_path.read_text().splitlines()[before:]
        assert sum("refused CONNECT" in line for line in lines) == logcap.BURST
        assert len(lines) < 4 * logcap.BURST, "\n".join(lines[-20:])
        hub.create_device("after-flood")  # still serving
        assert connect_device(hub, "victim").publish("devices/victim/messages/events/", b"ok")


def test_the_log_cap_keeps_the_first_of_a_repeated_message_and_counts_the_rest() -> None:
    now = [0.0]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    cap = logcap.RepeatCap(handler, burst=3, window=60, clock=lambda: now[0])
    handler.addFilter(cap)
    logger = logging.getLogger("test.logcap")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for peer in range(50):
            logger.warning("peer %d failed", peer)
        logger.warning("a different message")
        assert out.getvalue().splitlines() == ["peer 0 failed", "peer 1 failed", "peer 2 failed",
                                               "a different message"]
        now[0] = 61.0
        logger.warning("peer %d failed", 99)
        lines = out.getvalue().splitlines()[4:]
        assert lines == ["47 more like this in 60 s, not logged: peer %d failed", "peer 99 failed"]
    finally:
        logger.removeHandler(handler)
