"""Every AMQP performative the hub sends, with all its fields: the groundwork of the Event
Hub-compatible endpoint (issue 15).

AMQP 1.0 (section 1.4) lets a peer leave out a performative's trailing null fields, and Qpid
Proton, the AMQP engine the hub uses, always does: its BEGIN ends at ``handle-max``, its OPEN at
the last field set. The Azure service sends every field, and the pure-Python AMQP client inside
``azure-eventhub`` 5.15 (``_pyamqp``) reads them by position: a short OPEN, BEGIN or ATTACH is an
IndexError there, and the connection never opens. (Fixed upstream in azure-sdk-for-python PR
47660, in no release on the registry yet.)

:class:`FullFrames` sits between Proton's transport output and the socket. It splits the byte
stream into frames and re-encodes each performative with Proton's own codec, padded with nulls
to its full field count (and an ATTACH's source and target to theirs). Payloads, SASL frames and
the protocol headers pass through unchanged.

:class:`AzureMessage` is the same care for messages: Proton writes a properties section even when
it is empty, and clients read one as there (the official device SDK's e2e suite reads the content
type of any event that has a properties section). The Azure service writes none then, nor does
the hub.
"""

from __future__ import annotations

import struct

from proton import Data, Described, Message

# Performative descriptor code -> number of fields (AMQP 1.0 section 2.7).
PERFORMATIVE_FIELDS = {0x10: 10, 0x11: 8, 0x12: 14, 0x13: 11, 0x14: 11, 0x15: 6, 0x16: 3,
                       0x17: 1, 0x18: 1}
# Source and target, inside an ATTACH (section 3.5).
TERMINUS_FIELDS = {0x28: 11, 0x29: 7}
ATTACH = 0x12
_HEADER = struct.Struct(">IBBH")  # size, data offset (4-byte words), type, channel
_AMQP_FRAME = 0
_PROTOCOL_HEADER = b"AMQP"


def _padded(value: object, widths: dict[int, int]) -> object:
    if not isinstance(value, Described) or not isinstance(value.value, list):
        return value
    width = widths.get(int(value.descriptor)) if isinstance(value.descriptor, int) else None
    if width is None or len(value.value) >= width:
        return value
    return Described(value.descriptor, list(value.value) + [None] * (width - len(value.value)))


def full_performative(body: bytes) -> bytes:
    """One AMQP frame body (performative, then any payload) with the performative padded."""
    data = Data()
    used = data.decode(body)
    performative = data.get_object()
    if not isinstance(performative, Described) or not isinstance(performative.value, list):
        return body
    code = int(performative.descriptor)
    fields = list(_padded(performative, PERFORMATIVE_FIELDS).value)  # type: ignore[attr-defined]
    if code == ATTACH:
        fields[5] = _padded(fields[5], TERMINUS_FIELDS)
        fields[6] = _padded(fields[6], TERMINUS_FIELDS)
    out = Data()
    out.put_object(Described(performative.descriptor, fields))
    return bytes(out.encode()) + body[used:]


class FullFrames:
    """Stateful: feed it Proton's output as it comes; it returns whole, padded frames."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> bytes:
        self._pending += data
        out = bytearray()
        pending = self._pending
        while True:
            if pending[:4] == _PROTOCOL_HEADER:
                if len(pending) < 8:
                    break
                out += pending[:8]
                del pending[:8]
                continue
            if len(pending) < _HEADER.size:
                break
            size, offset, frame_type, channel = _HEADER.unpack_from(pending)
            if len(pending) < size:
                break
            frame = bytes(pending[:size])
            del pending[:size]
            body = frame[offset * 4:]
            if frame_type != _AMQP_FRAME or not body:  # SASL frames, heartbeats
                out += frame
                continue
            body = full_performative(body)
            out += _HEADER.pack(_HEADER.size + len(body), 2, _AMQP_FRAME, channel) + body
        return bytes(out)


_PROPERTIES = 0x73


class AzureMessage(Message):
    """A Proton message encoded without an empty properties section."""

    def encode(self) -> bytearray:  # type: ignore[override]
        encoded = bytes(super().encode())
        # Sections come in a fixed order (header, annotations, properties, then application
        # properties and the body): only those up to the properties are decoded, so a 256 KB
        # body is copied once, never parsed.
        at = 0
        while at < len(encoded):
            section = Data()
            used = section.decode(encoded[at:])
            value = section.get_object()
            code = int(value.descriptor) if isinstance(value, Described) else _PROPERTIES + 1
            if code == _PROPERTIES and isinstance(value.value, list) and all(v is None for v in value.value):
                return bytearray(encoded[:at] + encoded[at + used:])
            if code >= _PROPERTIES:
                break
            at += used
        return bytearray(encoded)


def as_text(value: object) -> str:
    """A symbol, string or binary as text (clients encode the same field differently)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)
