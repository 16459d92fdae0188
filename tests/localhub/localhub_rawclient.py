"""A raw MQTT-over-TLS test client built on localhub.protocol.mqtt_codec: sends exactly the bytes a test
wants (including broken ones) and reads what the hub answers. Blocking, with timeouts."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

from localhub.protocol import auth
from localhub.protocol.mqtt_codec import (
    Connack,
    Connect,
    PacketReader,
    Puback,
    Publish,
    Suback,
    Subscribe,
    encode,
)


def device_token(hostname: str, device_id: str, key: str, ttl: int = 3600,
                 now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + ttl)
    return auth.generate_sas(f"{hostname}/devices/{device_id}", key, expiry)


class RawClient:
    def __init__(self, host: str, port: int, ca_path: str, timeout: float = 5.0) -> None:
        ctx = ssl.create_default_context(cafile=ca_path)
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.sock.settimeout(timeout)
        self.reader = PacketReader()
        self.pid = 0
        self.others: list[Any] = []  # packets skipped by expect()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_packet(self, packet: Any) -> None:
        self.send(encode(packet))

    def recv(self, timeout: float = 5.0) -> Any:
        """Next packet; None when the hub closed the connection. TimeoutError if none in time."""
        deadline = time.monotonic() + timeout
        while True:
            packet = self.reader.next_packet()
            if packet is not None:
                return packet
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no packet from the hub")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout as exc:
                raise TimeoutError("no packet from the hub") from exc
            except (ConnectionError, ssl.SSLError):
                return None
            if not data:
                return None
            self.reader.feed(data)

    def closed_by_hub(self, timeout: float = 5.0) -> bool:
        """Drain packets until the hub closes the connection (True) or ``timeout`` passes."""
        try:
            while True:
                if self.recv(timeout) is None:
                    return True
        except TimeoutError:
            return False

    def connect(self, device_id: str, username: str, password: str | None, keepalive: int = 60,
                clean_session: bool = True) -> Connack | None:
        self.send_packet(Connect(device_id, username, password.encode() if password else None,
                                 keepalive, clean_session))
        return self.recv()

    def next_pid(self) -> int:
        self.pid = self.pid % 65535 + 1
        return self.pid

    def subscribe(self, *filters: str, qos: int = 1) -> Suback:
        pid = self.next_pid()
        self.send_packet(Subscribe(pid, [(f, qos) for f in filters]))
        return self.expect(Suback)

    def publish(self, topic: str, payload: bytes = b"", qos: int = 1) -> Puback | None:
        pid = self.next_pid() if qos else None
        self.send_packet(Publish(topic, payload, qos, pid))
        return self.expect(Puback) if qos == 1 else None

    def expect(self, kind: type, timeout: float = 5.0) -> Any:
        """Next packet of ``kind``; other packets are kept in ``self.others``."""
        for i, packet in enumerate(self.others):
            if isinstance(packet, kind):
                return self.others.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            packet = self.recv(max(0.01, deadline - time.monotonic()))
            if packet is None:
                raise ConnectionError("hub closed the connection")
            if isinstance(packet, kind):
                return packet
            self.others.append(packet)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def connect_device(hub: Any, device_id: str, key: str | None = None, keepalive: int = 60,
                   clean_session: bool = True, ttl: int = 3600) -> RawClient:
    """A RawClient connected (CONNACK 0 asserted) as ``device_id``."""
    key = key or hub.device_key(device_id)
    client = RawClient(hub.host, hub.mqtt_port, str(hub.ca_path))
    ack = client.connect(device_id, f"{hub.hostname}/{device_id}/?api-version=2021-04-12",
                         device_token(hub.hostname, device_id, key, ttl), keepalive, clean_session)
    assert isinstance(ack, Connack) and ack.return_code == 0, ack
    return client
