"""The SASL layer in front of the hub's Proton engine, with a Proton client engine on the other
side in memory (the uamqp end of it runs in test_amqp_service.py over TLS): a SASL client and a
client without SASL both open a connection; hostile bytes get SaslRefused, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proton import Connection, Endpoint, Transport

from localhub.endpoints.amqp_sasl import SASL_HEADER, SaslFront, SaslRefused, outcome_frame

OPEN = Endpoint.LOCAL_ACTIVE | Endpoint.REMOTE_ACTIVE


def _talk(mechanism: str | None, chunk: int = 1 << 20) -> tuple[Connection, Connection, Transport]:
    """A client (SASL ``mechanism``, or none) and a Proton server behind a SaslFront; the
    client's bytes reach the front ``chunk`` bytes at a time."""
    front = SaslFront()
    server, server_conn = Transport(Transport.SERVER), Connection()
    server.bind(server_conn)
    client, client_conn = Transport(), Connection()
    if mechanism:
        client.sasl().allowed_mechs(mechanism)
    client_conn.hostname = "hub"
    client.bind(client_conn)
    client_conn.open()
    server_conn.open()
    for _ in range(50):
        moved = False
        if (n := client.pending()) > 0:
            data = client.peek(n)
            client.pop(n)
            moved = True
            for start in range(0, len(data), chunk):
                try:
                    to_server, reply = front.feed(data[start:start + chunk])
                except SaslRefused as exc:
                    client.push(exc.reply)
                    return client_conn, server_conn, client
                if reply:
                    client.push(reply)
                if to_server:
                    server.push(to_server)
        if (n := server.pending()) > 0:
            client.push(server.peek(n))
            server.pop(n)
            moved = True
        if not moved:
            break
    return client_conn, server_conn, client


@pytest.mark.parametrize("mechanism", ["ANONYMOUS", None])
@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_a_client_opens_with_sasl_anonymous_or_without_sasl(mechanism: str | None, chunk: int) -> None:
    client_conn, server_conn, client = _talk(mechanism, chunk)
    assert client_conn.state == OPEN and server_conn.state == OPEN
    assert client.condition is None


def test_a_mechanism_not_offered_fails_the_client_and_opens_nothing() -> None:
    client_conn, server_conn, client = _talk("PLAIN")
    assert client_conn.state & Endpoint.REMOTE_UNINIT and server_conn.state & Endpoint.REMOTE_UNINIT
    assert client.condition is not None and "Authentication failed" in client.condition.description


def test_an_init_for_another_mechanism_is_answered_with_auth_failed() -> None:
    front = SaslFront()
    _, reply = front.feed(SASL_HEADER)
    assert reply.startswith(SASL_HEADER) and b"MSSBCBS" in reply and b"ANONYMOUS" in reply
    # sasl-init (0x41) asking for PLAIN, as Proton's codec writes it
    from proton import Data, Described, symbol

    data = Data()
    data.put_object(Described(0x41, [symbol("PLAIN"), b"\0user\0pw", None]))
    body = bytes(data.encode())
    frame = (8 + len(body)).to_bytes(4, "big") + b"\x02\x01\x00\x00" + body
    with pytest.raises(SaslRefused, match="'PLAIN' not offered") as refused:
        front.feed(frame)
    assert refused.value.reply == outcome_frame(1)  # auth failed, and nothing goes to Proton


@pytest.mark.parametrize("garbage", [b"HTTP/1.1 GET /", b"AMQP\x03\x01\x00\x00\xff\xff\xff\xff\x02\x01\x00\x00",
                                     b"AMQP\x03\x01\x00\x00\x00\x00\x00\x10\x02\x00\x00\x00" + b"\x00" * 8])
def test_hostile_openings_are_refused(garbage: bytes) -> None:
    with pytest.raises(SaslRefused):
        SaslFront().feed(garbage)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_after_the_sasl_header_are_refused_or_taken_never_a_crash(tail: bytes) -> None:
    front = SaslFront()
    try:
        front.feed(SASL_HEADER + tail)
    except SaslRefused:  # the one exception a connection handles; anything else is a bug
        return
