"""MicroPython's `socket` over the host's sockets.

As on a board: sockets are streams (`read`, `readinto`, `readline`, `write`), a non-blocking stream
read with nothing to give returns None while `recv` raises OSError(EAGAIN), errors are plain
`OSError(errno)`, and nothing reaches the network while the Wi-Fi link is down.
"""

import errno as _errno
import socket as _host

from hostemu.mp import network as _network
from hostemu.mp._stream import StreamReads

AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
SOL_SOCKET = 4095
SO_REUSEADDR = 4
TCP_NODELAY = 1

# lwIP's getaddrinfo failure on the ESP ports.
_EAI_FAIL = -202


def _os_error(exc: OSError) -> OSError:
    """CPython's OSError subclasses as MicroPython raises them: OSError(errno)."""
    if isinstance(exc, TimeoutError) or isinstance(exc, _host.timeout):
        return OSError(_errno.ETIMEDOUT)
    return OSError(exc.errno or _errno.EIO)


def _require_link() -> None:
    if not _network.is_link_up():
        raise OSError(_errno.ECONNABORTED)


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    if not _network.is_link_up():
        raise OSError(_EAI_FAIL)
    try:
        infos = _host.getaddrinfo(host, port, _host.AF_INET, _host.SOCK_STREAM if type in (0, SOCK_STREAM) else _host.SOCK_DGRAM)
    except _host.gaierror:
        raise OSError(_EAI_FAIL) from None
    family, kind, protocol, _canon, address = infos[0]
    return [(AF_INET, SOCK_STREAM if kind == _host.SOCK_STREAM else SOCK_DGRAM, protocol, "", address)]


def inet_ntop(af, packed):
    return _host.inet_ntop(_host.AF_INET, bytes(packed))


def inet_pton(af, text):
    return _host.inet_pton(_host.AF_INET, text)


class socket(StreamReads):
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0, _wrap=None):
        if _wrap is not None:
            self._sock = _wrap
        else:
            kind = _host.SOCK_DGRAM if type == SOCK_DGRAM else _host.SOCK_STREAM
            self._sock = _host.socket(_host.AF_INET, kind)
        self._sock.setblocking(True)

    # --- settings ---------------------------------------------------------------------------
    def settimeout(self, value):
        self._sock.settimeout(value)

    def setblocking(self, flag):
        self._sock.setblocking(bool(flag))

    def setsockopt(self, level, option, value):
        if level == SOL_SOCKET and option == SO_REUSEADDR:
            self._sock.setsockopt(_host.SOL_SOCKET, _host.SO_REUSEADDR, value)
        elif level == IPPROTO_TCP and option == TCP_NODELAY:
            self._sock.setsockopt(_host.IPPROTO_TCP, _host.TCP_NODELAY, value)

    def makefile(self, mode="rb", buffering=0):
        return self

    # --- connection -------------------------------------------------------------------------
    def connect(self, address):
        _require_link()
        try:
            self._sock.connect(tuple(address))
        except BlockingIOError:
            raise OSError(_errno.EINPROGRESS) from None
        except OSError as exc:
            raise _os_error(exc) from None

    def bind(self, address):
        try:
            self._sock.bind(tuple(address))
        except OSError as exc:
            raise _os_error(exc) from None

    def listen(self, backlog=2):
        self._sock.listen(backlog)

    def accept(self):
        try:
            conn, address = self._sock.accept()
        except BlockingIOError:
            raise OSError(_errno.EAGAIN) from None
        except OSError as exc:
            raise _os_error(exc) from None
        return socket(_wrap=conn), address

    def close(self):
        self._sock.close()

    # --- datagram/segment API ---------------------------------------------------------------
    def send(self, data):
        _require_link()
        try:
            return self._sock.send(data)
        except BlockingIOError:
            raise OSError(_errno.EAGAIN) from None
        except OSError as exc:
            raise _os_error(exc) from None

    def sendall(self, data):
        _require_link()
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise _os_error(exc) from None

    def recv(self, bufsize):
        _require_link()
        try:
            return self._sock.recv(bufsize)
        except BlockingIOError:
            raise OSError(_errno.EAGAIN) from None
        except OSError as exc:
            raise _os_error(exc) from None

    def sendto(self, data, address):
        _require_link()
        return self._sock.sendto(data, tuple(address))

    def recvfrom(self, bufsize):
        _require_link()
        try:
            return self._sock.recvfrom(bufsize)
        except OSError as exc:
            raise _os_error(exc) from None

    # --- stream API -------------------------------------------------------------------------
    def _stream_recv(self, size):
        _require_link()
        try:
            return self._sock.recv(size)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise _os_error(exc) from None

    def write(self, buf, nbytes=None):
        if isinstance(buf, str):  # MicroPython streams take str as its UTF-8 bytes
            buf = buf.encode()
        view = memoryview(buf)
        if nbytes is not None:
            view = view[:nbytes]
        _require_link()
        try:
            if self._sock.gettimeout() == 0.0:
                return self._sock.send(view)
            # A blocking MicroPython stream write returns only when all of it is written.
            self._sock.sendall(view)
            return len(view)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise _os_error(exc) from None

    def _host_socket(self):
        return self._sock

    def __del__(self):
        try:
            self._sock.close()
        except Exception:
            pass
