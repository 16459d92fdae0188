"""MicroPython-like ``socket`` and ``ssl`` modules over CPython's, for tests on real sockets.

Device code calls ``write``/``readinto``/``read`` on sockets and ``SSLContext.wrap_socket`` with
MicroPython's semantics (None when a non-blocking read has nothing). ``iothub.net.use(SOCKET,
SSL)`` makes the library use these; the host emulation layer provides its own equivalents.
"""

import socket as _socket
import ssl as _ssl

from hostemu import tlsrules

_WOULD_BLOCK = (BlockingIOError, _ssl.SSLWantReadError, _ssl.SSLWantWriteError)


class MPStream:
    def __init__(self, sock):
        self._s = sock

    def connect(self, addr):
        self._s.connect(addr)

    def settimeout(self, t):
        self._s.settimeout(t)

    def setsockopt(self, level, option, value):
        self._s.setsockopt(level, option, value)

    def setblocking(self, flag):
        self._s.setblocking(flag)

    def readinto(self, buf, n=-1):
        mv = memoryview(buf)
        if n >= 0:
            mv = mv[:n]
        try:
            return self._s.recv_into(mv)
        except _WOULD_BLOCK:
            return None

    def read(self, n):
        buf = bytearray(n)
        got = self.readinto(buf)
        return None if got is None else bytes(buf[:got])

    def write(self, buf, n=-1):
        mv = memoryview(buf)
        if n >= 0:
            mv = mv[:n]
        try:
            return self._s.send(mv)
        except _WOULD_BLOCK:
            return None

    def close(self):
        self._s.close()

    def fileno(self):  # select.poll on CPython takes objects with a fileno()
        return self._s.fileno()


class _SocketModule:
    SOCK_STREAM = _socket.SOCK_STREAM
    AF_INET = _socket.AF_INET

    @staticmethod
    def getaddrinfo(host, port, af=0, type=0):
        return _socket.getaddrinfo(host, port, _socket.AF_INET, type)

    @staticmethod
    def socket(af=_socket.AF_INET, type=_socket.SOCK_STREAM):
        return MPStream(_socket.socket(af, type))


class SSLContext:
    def __init__(self, protocol):
        self._ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        self.loaded = 0

    @property
    def verify_mode(self):
        return self._ctx.verify_mode

    @verify_mode.setter
    def verify_mode(self, mode):
        self._ctx.verify_mode = mode

    def load_verify_locations(self, cafile=None, cadata=None):
        # As MicroPython's mbedTLS: one DER certificate per call, PEM refused (hostemu.tlsrules).
        self._ctx.load_verify_locations(cadata=tlsrules.ca_certificate(cadata))
        self.loaded += 1

    def wrap_socket(self, sock, server_side=False, server_hostname=None):
        wrapped = self._ctx.wrap_socket(sock._s, server_hostname=server_hostname)
        # On MicroPython the plain socket stays the TLS socket's transport (its timeout applies);
        # CPython detaches it, so point it at the wrapped one.
        sock._s = wrapped
        return MPStream(wrapped)


class _SSLModule:
    PROTOCOL_TLS_CLIENT = 2
    CERT_REQUIRED = _ssl.CERT_REQUIRED
    CERT_NONE = _ssl.CERT_NONE
    SSLContext = SSLContext


SOCKET = _SocketModule()
SSL = _SSLModule()
