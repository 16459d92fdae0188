"""The "socket" bridge service: real host sockets and TLS behind the VM's socket/ssl/select.

Every host socket is non-blocking; a device socket's blocking mode and timeout are emulated here
by waiting in short slices, so that a stop request or the run's time limit is noticed while the
device code is blocked. Errors reach the device as MicroPython raises them: `OSError(errno)`
with Linux errno values (the ESP ports use the same numbers), `OSError(-202)` for a name that
does not resolve (lwIP's EAI_FAIL as the ESP32 port reports it). TLS follows `hostemu.tlsrules`
(one DER certificate per `load_verify_locations`, PEM refused, CERT_REQUIRED needs a server name,
a server certificate that does not verify is a ValueError with mbedTLS's text).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import select
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from hostemu import tlsrules
from hostemu.peripherals.protocol import DeviceError, Reply, os_error

log = logging.getLogger(__name__)

EAI_FAIL = -202
# MicroPython's select constants (the same on every port).
POLLIN, POLLOUT, POLLERR, POLLHUP = 0x1, 0x4, 0x8, 0x10

AF_INET, AF_INET6 = 2, 10
SOCK_STREAM, SOCK_DGRAM = 1, 2
CERT_REQUIRED = 2

_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_SLICE = 0.05  # seconds between checks for a stop request while waiting


@dataclass
class _Conn:
    kind: int
    sock: socket.socket
    timeout: float | None = None  # None: blocking; 0: non-blocking; else seconds
    connecting: bool = False
    tls: ssl.SSLSocket | None = None
    cadata: list[bytes] = field(default_factory=list)
    client_cert: bytes | None = None
    client_key: bytes | None = None
    peer: tuple[str, int] | None = None
    eof: bool = False

    @property
    def stream(self) -> socket.socket:
        return self.tls if self.tls is not None else self.sock


@dataclass
class _PollSet:
    masks: dict[int, int] = field(default_factory=dict)
    ready: list[int] = field(default_factory=list)  # packed handle << 8 | events


class NetService:
    """Host side of netmodules/socket.py, ssl.py and select.py (the VM's and the CPython runtime's).

    `hosts` maps names the device resolves to IP addresses (e.g. a hub's real-looking host name to
    127.0.0.2); other names go to the host's resolver. `cancelled` tells blocking waits to give up.
    `link_up`, when given, is asked before every connect: False fails it with ECONNABORTED, as a
    board whose Wi-Fi is down does (the Board model will provide it).
    """

    def __init__(self, *, hosts: Mapping[str, str] | None = None,
                 cancelled: Callable[[], bool] = lambda: False,
                 link_up: Callable[[], bool] | None = None) -> None:
        self.hosts = dict(hosts or {})
        self._cancelled = cancelled
        self._link_up = link_up
        self._conns: dict[int, _Conn] = {}
        self._polls: dict[int, _PollSet] = {}
        self._next = 1

    # -- bookkeeping ----------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next += 1
        return self._next - 1

    def _conn(self, h: object) -> _Conn:
        conn = self._conns.get(h) if isinstance(h, int) else None
        if conn is None:
            raise os_error(errno.EBADF)
        return conn

    def close_all(self) -> None:
        for conn in self._conns.values():
            conn.stream.close()
        self._conns.clear()
        self._polls.clear()

    # -- resolution and setup -------------------------------------------------------------------

    def _resolve(self, host: object) -> str:
        if not isinstance(host, str) or not host:
            raise DeviceError("TypeError", "host must be a str")
        if host in self.hosts:
            return self.hosts[host]
        try:
            return str(ipaddress.IPv4Address(host))  # lwIP parses a literal without asking anyone
        except ValueError:
            pass
        if self._link_up is not None and not self._link_up():
            raise os_error(EAI_FAIL)  # no link, no DNS server
        try:
            infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            raise os_error(EAI_FAIL) from None
        return str(infos[0][4][0])

    def op_getaddrinfo(self, host: str, port: int = 0) -> str:
        return self._resolve(host)

    def op_open(self, af: int = AF_INET, kind: int = SOCK_STREAM, proto: int = 0) -> int:
        if af != AF_INET:
            raise os_error(errno.EAFNOSUPPORT)
        if kind not in (SOCK_STREAM, SOCK_DGRAM):
            raise os_error(errno.EINVAL)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == SOCK_STREAM else socket.SOCK_DGRAM)
        sock.setblocking(False)
        h = self._new_id()
        self._conns[h] = _Conn(kind, sock)
        return h

    def op_settimeout(self, h: int, value: float | None = None) -> None:
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise DeviceError("ValueError", "timeout must be None or >= 0")
        self._conn(h).timeout = None if value is None else float(value)

    def op_nodelay(self, h: int, flag: int) -> None:
        self._conn(h).sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if flag else 0)

    def op_close(self, h: int) -> None:
        conn = self._conns.pop(h, None)
        if conn is not None:
            conn.stream.close()
        for pset in self._polls.values():
            pset.masks.pop(h, None)

    def op_bind(self, h: int, host: str, port: int) -> None:
        try:
            self._conn(h).sock.bind((self._resolve(host) if host else "0.0.0.0", port))
        except OSError as exc:
            raise os_error(exc.errno or errno.EINVAL) from None

    def op_connect(self, h: int, host: str, port: int) -> None:
        conn = self._conn(h)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise DeviceError("ValueError", "bad port")
        if self._link_up is not None and not self._link_up():
            raise os_error(errno.ECONNABORTED)
        address = (self._resolve(host), port)
        conn.peer = address
        code = conn.sock.connect_ex(address)
        if code in (0, errno.EISCONN):
            return
        if code not in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
            raise os_error(code)
        if conn.timeout == 0:
            conn.connecting = True
            raise os_error(errno.EINPROGRESS)
        if not self._wait(conn.sock, write=True, timeout=conn.timeout):
            raise os_error(errno.ETIMEDOUT)
        code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise os_error(code)

    # -- waiting --------------------------------------------------------------------------------

    def _wait(self, sock: socket.socket, *, write: bool, timeout: float | None) -> bool:
        """Wait until `sock` is readable (or writable); False when `timeout` runs out first."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _SLICE if end is None else min(_SLICE, end - time.monotonic())
            if left <= 0:
                return False
            if self._cancelled():
                raise os_error(errno.ETIMEDOUT)
            r, w, _ = select.select([] if write else [sock], [sock] if write else [], [], left)
            if r or w:
                return True

    # -- TLS ------------------------------------------------------------------------------------

    def op_check_ca(self, *, data: bytes) -> None:
        """`load_verify_locations` refuses at once what MicroPython refuses (PEM, not DER)."""
        try:
            tlsrules.ca_certificate(data)
        except ValueError as exc:
            raise DeviceError("ValueError", str(exc)) from None

    def op_tls_ca(self, h: int, *, data: bytes) -> None:
        self._conn(h).cadata.append(data)

    def op_tls_cert(self, h: int, *, data: bytes) -> None:
        self._conn(h).client_cert = data

    def op_tls_key(self, h: int, *, data: bytes) -> None:
        self._conn(h).client_key = data

    def _context(self, conn: _Conn, server_hostname: str | None, verify_mode: int) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify_mode == CERT_REQUIRED:
            # mbedTLS with VERIFY_REQUIRED and no CA fails every handshake; so does an empty store.
            for blob in conn.cadata:
                try:
                    context.load_verify_locations(cadata=tlsrules.ca_certificate(blob))
                except ValueError as exc:
                    raise DeviceError("ValueError", str(exc)) from None
            context.check_hostname = True  # op_tls refused a missing name already
            context.verify_mode = ssl.CERT_REQUIRED
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            log.warning("VM device code opened TLS without certificate verification")
        if conn.client_cert is not None and conn.client_key is not None:
            self._load_client_cert(context, conn.client_cert, conn.client_key)
        return context

    @staticmethod
    def _load_client_cert(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
        # The ssl module loads a chain from files only, in PEM.
        from cryptography.hazmat.primitives import serialization

        if not cert.lstrip().startswith(b"-----BEGIN"):
            cert = ssl.DER_cert_to_PEM_cert(cert).encode()
        if not key.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_der_private_key(key, None).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            with open(cert_path, "wb") as f:
                f.write(cert)
            with open(key_path, "wb") as f:
                f.write(key)
            try:
                context.load_cert_chain(cert_path, key_path)
            except ssl.SSLError:
                raise DeviceError("ValueError", "invalid key") from None

    def op_tls(self, h: int, server_hostname: str | None = None, verify_mode: int = 0,
               handshake: int = 1) -> None:
        conn = self._conn(h)
        if conn.tls is not None or conn.kind != SOCK_STREAM:
            raise os_error(errno.EINVAL)
        try:
            tlsrules.check_wrap(verify_mode, server_hostname)
        except ValueError as exc:
            raise DeviceError("ValueError", str(exc)) from None
        context = self._context(conn, server_hostname, verify_mode)
        conn.tls = context.wrap_socket(conn.sock, server_hostname=server_hostname,
                                       do_handshake_on_connect=False)
        if handshake and conn.timeout != 0:
            self._io(conn, lambda: conn.tls.do_handshake(), conn.timeout)  # type: ignore[union-attr]

    def op_peercert_len(self, h: int) -> int:
        tls = self._conn(h).tls
        cert = tls.getpeercert(binary_form=True) if tls is not None else None
        return len(cert or b"")

    def op_peercert(self, h: int, *, size: int) -> Reply:
        tls = self._conn(h).tls
        cert = (tls.getpeercert(binary_form=True) if tls is not None else None) or b""
        return Reply(len(cert[:size]), cert[:size])

    def op_cipher(self, h: int) -> str | None:
        tls = self._conn(h).tls
        cipher = tls.cipher() if tls is not None else None
        return cipher[0] if cipher else None

    # -- data -----------------------------------------------------------------------------------

    def _io(self, conn: _Conn, attempt: Callable[[], object], timeout: float | None,
            reading: bool = False) -> object:
        """Run one non-blocking attempt, retrying as a blocking socket would; None = would block.

        The peer's end of the TLS session is EOF (b"") for a read; a write or a handshake it cuts
        short fails with ECONNRESET, as on a board (and as the agent retries)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return attempt()
            except _WOULD_BLOCK as exc:
                if timeout == 0:
                    return None
                left = None if end is None else end - time.monotonic()
                write = isinstance(exc, ssl.SSLWantWriteError) or (
                    isinstance(exc, BlockingIOError) and conn.connecting)
                if (left is not None and left <= 0) or not self._wait(conn.stream, write=write, timeout=left):
                    raise os_error(errno.ETIMEDOUT) from None
            except ssl.SSLCertVerificationError as exc:
                log.warning("VM TLS: server certificate rejected: %s", exc.verify_message)
                raise DeviceError("ValueError", str(tlsrules.verify_failure(exc))) from None
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                if not reading:
                    raise os_error(errno.ECONNRESET) from None
                conn.eof = True
                return b""
            except ssl.SSLError as exc:
                log.warning("VM TLS: %s", exc)
                raise os_error(errno.ECONNRESET) from None
            except OSError as exc:
                raise os_error(exc.errno or errno.EIO) from None

    def _check_link(self) -> None:
        # An established connection dies with the Wi-Fi link too (the CPython runtime does the same).
        if self._link_up is not None and not self._link_up():
            raise os_error(errno.ECONNABORTED)

    def op_read(self, h: int, *, size: int) -> Reply:
        conn = self._conn(h)
        self._check_link()
        if size == 0:
            return Reply(0)
        if conn.kind == SOCK_DGRAM:
            def attempt() -> bytes:
                data, conn.peer = conn.sock.recvfrom(size)
                return data
            got = self._io(conn, attempt, conn.timeout, reading=True)
        else:
            got = self._io(conn, lambda: conn.stream.recv(size), conn.timeout, reading=True)
        if got is None:
            return Reply(-1)
        got = cast(bytes, got)
        if not got:
            conn.eof = True
        return Reply(len(got), got)

    def op_write(self, h: int, *, data: bytes) -> int:
        conn = self._conn(h)
        self._check_link()
        if not data:
            return 0
        sent = self._io(conn, lambda: conn.stream.send(data), conn.timeout)
        return -1 if sent is None else int(sent)  # type: ignore[call-overload]

    def op_sendto(self, h: int, address: str, *, data: bytes) -> int:
        conn = self._conn(h)
        host, _, port = address.rpartition(":")
        target = (self._resolve(host), int(port))
        sent = self._io(conn, lambda: conn.sock.sendto(data, target), conn.timeout)
        return -1 if sent is None else int(sent)  # type: ignore[call-overload]

    def op_peer(self, h: int) -> str:
        peer = self._conn(h).peer
        if peer is None:
            raise os_error(errno.ENOTCONN)
        return f"{peer[0]}:{peer[1]}"

    # -- poll -------------------------------------------------------------------------------------

    def op_poll_new(self) -> int:
        pid = self._new_id()
        self._polls[pid] = _PollSet()
        return pid

    def op_poll_free(self, pid: int) -> None:
        self._polls.pop(pid, None)

    def _pollset(self, pid: object) -> _PollSet:
        pset = self._polls.get(pid) if isinstance(pid, int) else None
        if pset is None:
            raise DeviceError("ValueError", "unknown poll object")
        return pset

    def op_poll_set(self, pid: int, h: int, mask: int) -> None:
        self._conn(h)
        self._pollset(pid).masks[h] = int(mask)

    def op_poll_del(self, pid: int, h: int) -> None:
        self._pollset(pid).masks.pop(h, None)

    def _events(self, h: int, mask: int, readable: set[int], writable: set[int]) -> int:
        conn = self._conns.get(h)
        if conn is None:
            return 0
        events = 0
        if mask & POLLIN and (h in readable or (conn.tls is not None and conn.tls.pending() > 0) or conn.eof):
            events |= POLLIN
        if mask & POLLOUT and h in writable:
            events |= POLLOUT
        if h in writable and conn.connecting:
            if conn.stream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                events |= POLLERR | POLLHUP
            conn.connecting = False
        return events

    def op_poll_wait(self, pid: int, timeout_ms: int = -1, flags: int = 0) -> int:
        """Wait for the registered sockets; returns how many are ready (fetched by poll_get)."""
        pset = self._pollset(pid)
        end = None if timeout_ms is None or timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        while True:
            socks = {h: self._conns[h].stream for h, m in pset.masks.items() if m and h in self._conns}
            # Decrypted bytes waiting in the TLS layer make a socket readable without the kernel.
            buffered = any(self._conns[h].tls is not None and self._conns[h].tls.pending() > 0  # type: ignore[union-attr]
                           for h in socks)
            left = 0.0 if buffered else (_SLICE if end is None else max(0.0, min(_SLICE, end - time.monotonic())))
            rlist = [s for h, s in socks.items() if pset.masks[h] & POLLIN]
            wlist = [s for h, s in socks.items() if pset.masks[h] & POLLOUT or self._conns[h].connecting]
            r, w, _ = select.select(rlist, wlist, [], left) if socks else ([], [], [])
            if not socks and left:
                time.sleep(left)
            readable = {h for h, s in socks.items() if s in r}
            writable = {h for h, s in socks.items() if s in w}
            pset.ready = []
            for h, mask in pset.masks.items():
                events = self._events(h, mask, readable, writable)
                if events:
                    pset.ready.append(h << 8 | events)
                    if flags & 1:
                        pset.masks[h] = 0  # one-shot: silent until modify() re-arms it
            if pset.ready or (end is not None and time.monotonic() >= end):
                return len(pset.ready)
            if self._cancelled():
                return 0

    def op_poll_get(self, pid: int, index: int) -> int:
        ready = self._pollset(pid).ready
        if not isinstance(index, int) or not 0 <= index < len(ready):
            raise DeviceError("IndexError", "poll result index")
        return ready[index]
