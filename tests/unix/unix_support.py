"""Helpers of the unix tier (host side): a broker that misbehaves on purpose in front of a real
local hub, and a look at the socket options of the device's real sockets."""

from __future__ import annotations

import ctypes
import datetime
import ipaddress
import os
import socket
import ssl
import threading
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from localhub.testing import HubProcess


def _relay_certificate(hub: HubProcess, folder: Path) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 issued by the hub's own CA, so a device that trusts
    the hub trusts the relay: what a compromised or buggy broker looks like to it."""
    ca = x509.load_pem_x509_certificate(hub.ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key((hub.state_dir / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _packets(buffer: bytearray) -> list[bytes]:
    """Take the complete MQTT packets off the front of `buffer`."""
    out = []
    while len(buffer) >= 2:
        length, shift, i = 0, 0, 1
        while True:
            if i >= len(buffer):
                return out
            byte = buffer[i]
            length |= (byte & 0x7F) << shift
            shift += 7
            i += 1
            if not byte & 0x80:
                break
        if len(buffer) < i + length:
            return out
        out.append(bytes(buffer[:i + length]))
        del buffer[:i + length]
    return out


def publish_packet(topic: str, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH (MQTT 3.1.1, 3.3)."""
    body = len(topic).to_bytes(2, "big") + topic.encode() + payload
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([0x30]) + bytes(encoded) + body


def publish_topic(packet: bytes) -> str | None:
    if packet[0] & 0xF0 != 0x30:
        return None
    i = 1
    while packet[i] & 0x80:
        i += 1
    i += 1
    size = int.from_bytes(packet[i:i + 2], "big")
    return packet[i + 2:i + 2 + size].decode(errors="replace")


class MqttRelay:
    """A TLS-terminating relay in front of a hub's MQTT port on 127.0.0.1. Every packet passes
    both ways; `inject(packet)` sends the device one of the test's own; `cut_after(predicate)`
    forwards the first hub packet the predicate accepts, then drops what the device sends and
    closes that connection (later connections pass untouched)."""

    def __init__(self, hub: HubProcess, folder: Path) -> None:
        self.hub = hub
        cert, key = _relay_certificate(hub, folder)
        self._server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server.load_cert_chain(cert, key)
        self._client = ssl.create_default_context(cafile=str(hub.ca_path))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self.failures: list[str] = []  # relayed connections that could not be set up, and why
        self._device: ssl.SSLSocket | None = None
        self._lock = threading.Lock()
        self._cut: Callable[[bytes], bool] | None = None
        self.cut_done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def connection_string(self, device_connection_string: str) -> str:
        """The device's connection string, dialling the relay (MQTT goes to GatewayHostName)."""
        return device_connection_string + ";GatewayHostName=127.0.0.1"

    def inject(self, packet: bytes) -> None:
        with self._lock:
            if self._device is None:
                raise RuntimeError("no device connected to the relay")
            self._device.sendall(packet)

    def cut_after(self, predicate: Callable[[bytes], bool]) -> None:
        self._cut = predicate

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            device = self._server.wrap_socket(raw, server_side=True)
            upstream = self._client.wrap_socket(socket.create_connection((self.hub.host, self.hub.mqtt_port)),
                                                server_hostname=self.hub.host)
        except (OSError, ssl.SSLError) as exc:
            self.failures.append(repr(exc))
            raw.close()
            return
        self.connections += 1
        with self._lock:
            self._device = device
        cutting = threading.Event()

        def upward() -> None:
            try:
                while data := device.recv(65536):
                    if not cutting.is_set():
                        upstream.sendall(data)
            except (OSError, ssl.SSLError):
                pass
            finally:
                upstream.close()

        threading.Thread(target=upward, daemon=True).start()
        pending = bytearray()
        try:
            while data := upstream.recv(65536):
                pending += data
                for packet in _packets(pending):
                    with self._lock:
                        device.sendall(packet)
                    if self._cut is not None and self._cut(packet):
                        self._cut = None
                        cutting.set()  # what the device answers never reaches the hub
                        threading.Timer(0.5, self._close, (device, upstream)).start()
                        self.cut_done.set()
        except (OSError, ssl.SSLError):
            pass
        finally:
            self._close(device, upstream)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            try:
                # shutdown first: a close() alone leaves the connection open while the other
                # pump thread still blocks in recv() on it, and the peer would never see it go.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self._listener.close()


def tcp_nodelay(pid: int, fd: int) -> int:
    """TCP_NODELAY of socket `fd` of process `pid`, read off the kernel (pidfd_getfd, Linux 5.6)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        mine = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd
        if mine < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
    finally:
        os.close(pidfd)
    sock = socket.socket(fileno=mine)
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.detach()
        os.close(mine)


def device_pid(board_folder: Path) -> int:
    """The pid of the MicroPython process running the board in `board_folder` (its cwd)."""
    target = str(Path(board_folder).resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == target and b"_hostemu_main" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    raise LookupError(f"no MicroPython process runs {target}")
