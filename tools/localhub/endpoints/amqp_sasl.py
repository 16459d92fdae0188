"""The SASL layer of the AMQP endpoint, in front of Proton's engine.

The service SDK's AMQP client (uamqp, inside azure-iot-hub) opens with SASL and asks for
``MSSBCBS``, the mechanism of Azure's CBS endpoints: "no credentials here, the token comes on
``$cbs``". Proton's own SASL knows ANONYMOUS, PLAIN and EXTERNAL only and fails it. The
exchange carries no secret either way, so this layer answers it: it offers MSSBCBS and ANONYMOUS,
takes the client's sasl-init for either, says ok, and hands everything after it to Proton. A
client that opens with the plain AMQP header (azure-eventhub's pyamqp) goes straight through.
The frames are encoded and decoded with Proton's codec (AMQP 1.0 section 5.3).
"""

from __future__ import annotations

import struct

from proton import Data, Described

SASL_HEADER = b"AMQP\x03\x01\x00\x00"
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
MECHANISMS = ("MSSBCBS", "ANONYMOUS")
_FRAME = struct.Struct(">IBBH")  # size, data offset (4-byte words), type, channel
_SASL_FRAME = 1
_MECHANISMS, _INIT, _OUTCOME = 0x40, 0x41, 0x44
_OK, _AUTH_FAILED = 0, 1
MAX_SASL_FRAME = 4096


class SaslRefused(Exception):
    """The client's SASL is not one this layer takes; ``reply`` is what to send before closing."""

    def __init__(self, reason: str, reply: bytes = b"") -> None:
        super().__init__(reason)
        self.reply = reply


def _frame(body: bytes) -> bytes:
    return _FRAME.pack(_FRAME.size + len(body), 2, _SASL_FRAME, 0) + body


def mechanisms_frame() -> bytes:
    data = Data()
    data.put_described()
    data.enter()
    data.put_ulong(_MECHANISMS)
    data.put_list()
    data.enter()
    data.put_array(False, Data.SYMBOL)
    data.enter()
    for name in MECHANISMS:
        data.put_symbol(name)
    data.exit()
    data.exit()
    data.exit()
    return _frame(bytes(data.encode()))


def outcome_frame(code: int) -> bytes:
    data = Data()
    data.put_described()
    data.enter()
    data.put_ulong(_OUTCOME)
    data.put_list()
    data.enter()
    data.put_ubyte(code)
    data.exit()
    data.exit()
    return _frame(bytes(data.encode()))


def init_mechanism(body: bytes) -> str:
    """The mechanism a sasl-init frame body asks for. Raises SaslRefused."""
    data = Data()
    try:
        data.decode(body)
        init = data.get_object()
    except Exception as exc:  # Proton raises its own DataException on garbage
        raise SaslRefused(f"undecodable SASL frame: {exc}") from exc
    if not isinstance(init, Described) or init.descriptor != _INIT or not isinstance(init.value, list) \
            or not init.value:
        raise SaslRefused("expected sasl-init")
    return str(init.value[0])


class SaslFront:
    """Feed it the bytes a client sends; it returns (bytes for Proton, bytes to answer with)."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._state = "header"  # header -> init -> amqp (everything goes to Proton)

    @property
    def done(self) -> bool:
        return self._state == "amqp"

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        if self._state == "amqp":
            return data, b""
        self._pending += data
        pending = self._pending
        reply = bytearray()
        if self._state == "header":
            if len(pending) < 8:
                if not SASL_HEADER.startswith(bytes(pending)) and not AMQP_HEADER.startswith(bytes(pending)):
                    raise SaslRefused("not an AMQP protocol header")
                return b"", b""
            if pending[:8] == AMQP_HEADER:  # no SASL: Proton takes the stream as it is
                self._state = "amqp"
                rest = bytes(pending)
                pending.clear()
                return rest, b""
            if pending[:8] != SASL_HEADER:
                raise SaslRefused("not an AMQP 1.0 protocol header")
            del pending[:8]
            reply += SASL_HEADER + mechanisms_frame()
            self._state = "init"
        if self._state == "init":
            if len(pending) < _FRAME.size:
                return b"", bytes(reply)
            size, offset, frame_type, _channel = _FRAME.unpack_from(pending)
            if frame_type != _SASL_FRAME or size > MAX_SASL_FRAME or size < _FRAME.size or offset < 2:
                raise SaslRefused("expected a SASL frame")
            if len(pending) < size:
                return b"", bytes(reply)
            mechanism = init_mechanism(bytes(pending[offset * 4:size]))
            del pending[:size]
            if mechanism not in MECHANISMS:
                raise SaslRefused(f"SASL mechanism {mechanism[:40]!r} not offered",
                                  bytes(reply + outcome_frame(_AUTH_FAILED)))
            reply += outcome_frame(_OK)
            self._state = "amqp"
            rest = bytes(pending)
            pending.clear()
            return rest, bytes(reply)
        return b"", bytes(reply)
