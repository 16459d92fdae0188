"""The AMQP frames the hub's Proton engine sends, as azure-eventhub's own decoder reads them:
short as Proton writes them (what made the official client fail), full after FullFrames.

Two Proton engines talk back to back in memory, a client opening a connection, a session and
a receiver link as azure-eventhub does ($cbs), a server answering; the server's bytes are
decoded with ``azure.eventhub._pyamqp``'s ``decode_frame`` and built into its frame types."""

from __future__ import annotations

import struct

import pytest
from azure.eventhub._pyamqp._decode import decode_frame
from azure.eventhub._pyamqp.endpoints import Source, Target
from azure.eventhub._pyamqp.performatives import AttachFrame, BeginFrame, OpenFrame
from proton import Collector, Connection, Transport
from proton.handlers import MessagingHandler

from localhub.endpoints.amqp_frames import PERFORMATIVE_FIELDS, FullFrames

OPEN, BEGIN, ATTACH = 0x10, 0x11, 0x12


class _Server(MessagingHandler):
    def on_link_opening(self, event):
        event.link.source.copy(event.link.remote_source)
        event.link.target.copy(event.link.remote_target)


def _server_bytes() -> bytes:
    """What a Proton server engine sends back to a client that opens a link on ``$cbs``."""
    client_conn, server_conn = Connection(), Connection()
    client, server = Transport(), Transport(Transport.SERVER)
    client.bind(client_conn)
    server.bind(server_conn)
    collector = Collector()
    server_conn.collect(collector)
    client_conn.container = "pyamqp-like"
    client_conn.open()
    session = client_conn.session()
    session.open()
    receiver = session.receiver("cbs-receiver")
    receiver.source.address = "$cbs"
    receiver.target.address = "cbs-receiver"
    receiver.open()
    handler = _Server()
    sent = bytearray()
    for _ in range(10):
        pending = client.pending()
        if pending > 0:
            server.push(client.peek(pending))
            client.pop(pending)
        while (event := collector.peek()) is not None:
            event.dispatch(handler)
            collector.pop()
        pending = server.pending()
        if pending > 0:
            data = server.peek(pending)
            sent += data
            client.push(data)
            server.pop(pending)
    return bytes(sent)


def _frames(stream: bytes) -> list[tuple[int, list]]:
    out = []
    view = memoryview(stream)
    while view:
        if bytes(view[:4]) == b"AMQP":
            view = view[8:]
            continue
        size, offset = struct.unpack(">IB", view[:5])
        body = view[offset * 4:size]
        if body:
            out.append(decode_frame(body))
        view = view[size:]
    return out


def test_proton_leaves_out_fields_the_official_client_reads() -> None:
    short = {kind: fields for kind, fields in _frames(_server_bytes())}
    assert set(short) >= {OPEN, BEGIN, ATTACH}
    assert len(short[BEGIN]) < PERFORMATIVE_FIELDS[BEGIN]
    with pytest.raises(IndexError):  # what pyamqp's _incoming_begin does: frame[7]
        short[BEGIN][7]


def test_full_frames_gives_the_official_client_every_field() -> None:
    full = FullFrames().feed(_server_bytes())
    frames = dict(_frames(full))
    assert {kind: len(frames[kind]) for kind in (OPEN, BEGIN, ATTACH)} == {
        kind: PERFORMATIVE_FIELDS[kind] for kind in (OPEN, BEGIN, ATTACH)}
    OpenFrame(*frames[OPEN])
    BeginFrame(*frames[BEGIN])
    attach = AttachFrame(*frames[ATTACH])
    source, target = Source(*attach.source), Target(*attach.target)
    assert bytes(source.address) == b"$cbs" and bytes(target.address) == b"cbs-receiver"


def test_frames_split_anywhere_come_out_the_same() -> None:
    stream = _server_bytes()
    whole = FullFrames().feed(stream)
    pieces = FullFrames()
    assert b"".join(pieces.feed(stream[i:i + 3]) for i in range(0, len(stream), 3)) == whole


def test_an_event_with_no_properties_goes_out_without_a_properties_section() -> None:
    from azure.eventhub._pyamqp._decode import decode_payload
    from proton import Message, symbol

    from localhub.endpoints.amqp_frames import AzureMessage

    bare = AzureMessage(body=b"reading")
    bare.inferred = True
    bare.annotations = {symbol("x-opt-offset"): "7"}
    decoded = decode_payload(memoryview(bytes(bare.encode())))
    assert decoded.properties is None and decoded.data == [b"reading"]
    assert decoded.message_annotations == {b"x-opt-offset": b"7"}
    plain = Message(body=b"reading")  # what Proton writes on its own: an empty section, read as present
    plain.inferred = True
    assert decode_payload(memoryview(bytes(plain.encode()))).properties is not None

    typed = AzureMessage(body=b"{}", content_type="application/json")
    typed.inferred = True
    assert decode_payload(memoryview(bytes(typed.encode()))).properties.content_type == b"application/json"
