"""MQTT 3.1.1 codec: bytes in, packets out, and packets to bytes. No I/O, no clock.

Only what IoT Hub's MQTT dialect uses: CONNECT/CONNACK, PUBLISH (QoS 0/1), PUBACK,
SUBSCRIBE/SUBACK, UNSUBSCRIBE/UNSUBACK, PINGREQ/PINGRESP, DISCONNECT. Both directions are
encoded and decoded so the same module serves the hub and the raw test clients.

Errors: :class:`MalformedPacket` for a peer's violation of the spec (the connection must be
closed, MQTT 3.1.1 section 4.8), :class:`PacketTooLarge` when the remaining length announced by a
fixed header exceeds the reader's limit (checked before the body is buffered, so an oversized
packet never costs memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

# CONNACK return codes (3.2.2.3).
CONNACK_ACCEPTED = 0
CONNACK_BAD_PROTOCOL = 1
CONNACK_ID_REJECTED = 2
CONNACK_UNAVAILABLE = 3
CONNACK_BAD_CREDENTIALS = 4
CONNACK_NOT_AUTHORIZED = 5

SUBACK_FAILURE = 0x80
MAX_REMAINING_LENGTH = 268_435_455  # four length bytes, 3.1.1 section 2.2.3


class MqttError(Exception):
    """Base class of codec errors."""


class MalformedPacket(MqttError):
    """The peer sent bytes that are not a valid MQTT 3.1.1 packet."""


class PacketTooLarge(MqttError):
    """The announced packet is larger than the reader accepts."""


@dataclass
class Connect:
    client_id: str
    username: str | None
    password: bytes | None
    keepalive: int
    clean_session: bool
    protocol_name: str = "MQTT"
    protocol_level: int = 4
    will_topic: str | None = None
    will_payload: bytes | None = None


@dataclass
class Connack:
    session_present: bool
    return_code: int


@dataclass
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    packet_id: int | None = None
    retain: bool = False
    dup: bool = False


@dataclass
class Puback:
    packet_id: int


@dataclass
class Subscribe:
    packet_id: int
    topics: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Suback:
    packet_id: int
    return_codes: list[int] = field(default_factory=list)


@dataclass
class Unsubscribe:
    packet_id: int
    topics: list[str] = field(default_factory=list)


@dataclass
class Unsuback:
    packet_id: int


@dataclass
class Pingreq:
    pass


@dataclass
class Pingresp:
    pass


@dataclass
class Disconnect:
    pass


Packet = (
    Connect | Connack | Publish | Puback | Subscribe | Suback | Unsubscribe | Unsuback
    | Pingreq | Pingresp | Disconnect
)


# --- decoding -------------------------------------------------------------------------------

class _Cursor:
    """Reads MQTT primitive fields from one packet body; any overrun is a malformed packet."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def remaining(self) -> int:
        return len(self.body) - self.pos

    def u8(self) -> int:
        if self.pos + 1 > len(self.body):
            raise MalformedPacket("packet ends inside a byte field")
        value = self.body[self.pos]
        self.pos += 1
        return value

    def u16(self) -> int:
        if self.pos + 2 > len(self.body):
            raise MalformedPacket("packet ends inside a two-byte field")
        value = (self.body[self.pos] << 8) | self.body[self.pos + 1]
        self.pos += 2
        return value

    def binary(self) -> bytes:
        n = self.u16()
        if self.pos + n > len(self.body):
            raise MalformedPacket("length-prefixed field runs past the packet end")
        value = self.body[self.pos:self.pos + n]
        self.pos += n
        return bytes(value)

    def text(self) -> str:
        raw = self.binary()
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPacket("string field is not UTF-8") from exc
        if "\x00" in value:  # 1.5.3: U+0000 must not appear
            raise MalformedPacket("string field contains U+0000")
        return value

    def rest(self) -> bytes:
        value = bytes(self.body[self.pos:])
        self.pos = len(self.body)
        return value


def decode_packet(first_byte: int, body: bytes) -> Packet:
    """Decode one packet from its fixed-header first byte and its body (the remaining bytes)."""
    ptype = first_byte >> 4
    flags = first_byte & 0x0F
    cur = _Cursor(body)
    if ptype == PUBLISH:
        return _decode_publish(flags, cur)
    # 2.2.2: fixed flags for every other type; SUBSCRIBE, UNSUBSCRIBE and PUBREL carry 0b0010.
    expected = 0x02 if ptype in (SUBSCRIBE, UNSUBSCRIBE, PUBREL) else 0x00
    if flags != expected:
        raise MalformedPacket(f"bad fixed-header flags {flags:#x} for packet type {ptype}")
    if ptype == CONNECT:
        return _decode_connect(cur)
    if ptype == CONNACK:
        if len(body) != 2:
            raise MalformedPacket("CONNACK body must be 2 bytes")
        return Connack(bool(body[0] & 1), body[1])
    if ptype in (PUBACK, UNSUBACK):
        if len(body) != 2:
            raise MalformedPacket("acknowledgement body must be 2 bytes")
        pid = cur.u16()
        return Puback(pid) if ptype == PUBACK else Unsuback(pid)
    if ptype == SUBSCRIBE:
        pid = cur.u16()
        topics = []
        while cur.remaining():
            topic = cur.text()
            qos = cur.u8()
            if qos & 0xFC or not topic:
                raise MalformedPacket("bad SUBSCRIBE topic filter or requested QoS")
            topics.append((topic, qos))
        if not topics:
            raise MalformedPacket("SUBSCRIBE without a topic filter")  # 3.8.3-3
        return Subscribe(pid, topics)
    if ptype == SUBACK:
        pid = cur.u16()
        return Suback(pid, list(cur.rest()))
    if ptype == UNSUBSCRIBE:
        pid = cur.u16()
        filters = []
        while cur.remaining():
            filters.append(cur.text())
        if not filters:
            raise MalformedPacket("UNSUBSCRIBE without a topic filter")
        return Unsubscribe(pid, filters)
    if ptype in (PINGREQ, PINGRESP, DISCONNECT):
        if body:
            raise MalformedPacket("packet must have no body")
        return {PINGREQ: Pingreq, PINGRESP: Pingresp, DISCONNECT: Disconnect}[ptype]()
    raise MalformedPacket(f"unsupported packet type {ptype}")


def _decode_publish(flags: int, cur: _Cursor) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    topic = cur.text()
    if not topic or "+" in topic or "#" in topic:
        raise MalformedPacket("PUBLISH topic empty or with a wildcard")
    pid = None
    if qos:
        pid = cur.u16()
        if pid == 0:
            raise MalformedPacket("packet identifier 0")
    return Publish(topic, cur.rest(), qos, pid, bool(flags & 1), bool(flags & 8))


def _decode_connect(cur: _Cursor) -> Connect:
    name = cur.text()
    level = cur.u8()
    flags = cur.u8()
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag set")  # 3.1.2-3
    keepalive = cur.u16()
    client_id = cur.text()
    will_topic = will_payload = None
    if flags & 0x04:
        will_topic = cur.text()
        will_payload = cur.binary()
    elif flags & 0x38:
        raise MalformedPacket("will QoS/retain set without a will")
    username = cur.text() if flags & 0x80 else None
    password = cur.binary() if flags & 0x40 else None
    if password is not None and username is None:
        raise MalformedPacket("password without a username")  # 3.1.2-22
    if cur.remaining():
        raise MalformedPacket("trailing bytes after CONNECT payload")
    return Connect(client_id, username, password, keepalive, bool(flags & 0x02),
                   name, level, will_topic, will_payload)


class PacketReader:
    """Incremental decoder: ``feed(data)`` then iterate ``packets()``.

    ``max_packet`` bounds the remaining length; a larger announcement raises
    :class:`PacketTooLarge` as soon as the length bytes are in, before the body arrives.
    """

    def __init__(self, max_packet: int = MAX_REMAINING_LENGTH) -> None:
        self.max_packet = max_packet
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def pending(self) -> int:
        """Bytes buffered that do not yet form a whole packet."""
        return len(self._buf)

    def next_packet(self) -> Packet | None:
        """Return the next whole packet, or None when more bytes are needed."""
        buf = self._buf
        if len(buf) < 2:
            return None
        length = 0
        multiplier = 1
        pos = 1
        while True:
            if pos >= len(buf):
                return None
            byte = buf[pos]
            length += (byte & 0x7F) * multiplier
            pos += 1
            if not byte & 0x80:
                break
            multiplier *= 128
            if pos > 4:
                raise MalformedPacket("remaining length longer than four bytes")
        if length > self.max_packet:
            raise PacketTooLarge(f"packet of {length} bytes exceeds the {self.max_packet} limit")
        if len(buf) < pos + length:
            return None
        first = buf[0]
        body = bytes(buf[pos:pos + length])
        del buf[:pos + length]
        return decode_packet(first, body)

    def packets(self) -> list[Packet]:
        out = []
        while (packet := self.next_packet()) is not None:
            out.append(packet)
        return out


# --- encoding -------------------------------------------------------------------------------

def _remaining_length(n: int) -> bytes:
    if n > MAX_REMAINING_LENGTH:
        raise ValueError("packet too large to encode")
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def _str(value: str) -> bytes:
    return _bin(value.encode("utf-8"))


def _bin(value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError("field longer than 65535 bytes")
    return len(value).to_bytes(2, "big") + value


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _remaining_length(len(body)) + body


def encode(packet: Packet) -> bytes:
    """Encode any packet dataclass to wire bytes."""
    if isinstance(packet, Publish):
        if packet.qos not in (0, 1, 2):
            raise ValueError("bad QoS")
        first = (PUBLISH << 4) | (packet.qos << 1) | (8 if packet.dup else 0) | int(packet.retain)
        body = _str(packet.topic)
        if packet.qos:
            if not packet.packet_id:
                raise ValueError("QoS>0 PUBLISH needs a packet id")
            body += packet.packet_id.to_bytes(2, "big")
        return _packet(first, body + packet.payload)
    if isinstance(packet, Connack):
        return _packet(CONNACK << 4, bytes([int(packet.session_present), packet.return_code]))
    if isinstance(packet, Puback):
        return _packet(PUBACK << 4, packet.packet_id.to_bytes(2, "big"))
    if isinstance(packet, Unsuback):
        return _packet(UNSUBACK << 4, packet.packet_id.to_bytes(2, "big"))
    if isinstance(packet, Suback):
        return _packet(SUBACK << 4, packet.packet_id.to_bytes(2, "big") + bytes(packet.return_codes))
    if isinstance(packet, Subscribe):
        body = packet.packet_id.to_bytes(2, "big")
        for topic, qos in packet.topics:
            body += _str(topic) + bytes([qos])
        return _packet((SUBSCRIBE << 4) | 2, body)
    if isinstance(packet, Unsubscribe):
        body = packet.packet_id.to_bytes(2, "big") + b"".join(_str(t) for t in packet.topics)
        return _packet((UNSUBSCRIBE << 4) | 2, body)
    if isinstance(packet, Connect):
        flags = 0x02 if packet.clean_session else 0
        payload = _str(packet.client_id)
        if packet.will_topic is not None:
            flags |= 0x04
            payload += _str(packet.will_topic) + _bin(packet.will_payload or b"")
        if packet.username is not None:
            flags |= 0x80
            payload += _str(packet.username)
        if packet.password is not None:
            flags |= 0x40
            payload += _bin(packet.password)
        body = (_str(packet.protocol_name) + bytes([packet.protocol_level, flags])
                + packet.keepalive.to_bytes(2, "big") + payload)
        return _packet(CONNECT << 4, body)
    if isinstance(packet, Pingreq):
        return bytes([PINGREQ << 4, 0])
    if isinstance(packet, Pingresp):
        return bytes([PINGRESP << 4, 0])
    if isinstance(packet, Disconnect):
        return bytes([DISCONNECT << 4, 0])
    raise TypeError(f"cannot encode {type(packet).__name__}")
