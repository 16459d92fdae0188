"""Sockets and TLS exactly as MicroPython 1.27 exposes them (the runtime contract).

``open_stream`` returns an object with ``read``/``readinto``/``write``/``setblocking``/``close``:
a MicroPython (ssl) socket on a board, the host emulation layer's equivalent on a PC, or whatever a
test's ``sock_factory(host, port)`` returns. MicroPython's TLS sockets have no ``settimeout``:
a timeout is set on the plain socket under them, which ``open_pair`` also returns.
"""

from iothub.errors import ConfigError

# The modules used, resolved on first use. ``use()`` swaps them: the host emulation layer and
# tests pass MicroPython-like socket/ssl modules here without touching sys.modules.
_socket = None
_ssl = None


def use(socket_module=None, ssl_module=None):
    """Make this library use ``socket_module`` / ``ssl_module`` (None restores the built-ins)."""
    global _socket, _ssl
    _socket = socket_module
    _ssl = ssl_module


def socket_module():
    global _socket
    if _socket is None:
        import socket as _socket
    return _socket


def ssl_module():
    global _ssl
    if _ssl is None:
        import ssl as _ssl
    return _ssl


def tls_context(ca):
    """A client SSLContext that verifies the server against ``ca`` (PEM text/bytes or DER).

    MicroPython takes ``cadata`` as bytes (PEM or DER); CPython takes PEM only as str. Bytes
    are tried first, then PEM text, so the same call works on both.
    """
    if not ca:
        raise ConfigError("a CA certificate is required to verify the server")
    ssl = ssl_module()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    data = ca.encode() if isinstance(ca, str) else ca
    try:
        ctx.load_verify_locations(cadata=data)
    except Exception:
        if data[:5] != b"-----":
            raise
        ctx.load_verify_locations(cadata=data.decode())
    return ctx


def split_host_port(text, default_port):
    """``"host"`` -> ``(host, default_port)``; ``"host:8443"`` -> ``("host", 8443)``."""
    colon = text.rfind(":")
    if colon < 0:
        return text, default_port
    port = text[colon + 1 :]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("bad port in host '%s'" % text[:64])
    return text[:colon], int(port)


def open_pair(host, port, ctx=None, timeout=30, sock_factory=None):
    """Connect to ``host:port`` (TLS if ``ctx``), blocking with ``timeout`` seconds.

    Returns ``(stream, plain)``: what to read and write, and the plain socket under it (the same
    object without TLS), which is where a timeout is set.
    """
    if sock_factory:
        sock = sock_factory(host, port)
    else:
        socket = socket_module()
        addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
        sock = socket.socket()
        try:
            sock.settimeout(timeout)
            sock.connect(addr)
        except BaseException:
            sock.close()
            raise
    if ctx is None:
        return sock, sock
    try:
        return ctx.wrap_socket(sock, server_hostname=host), sock
    except BaseException:
        sock.close()
        raise


def open_stream(host, port, ctx=None, timeout=30, sock_factory=None):
    """``open_pair``'s stream alone, for callers that never change the timeout."""
    return open_pair(host, port, ctx, timeout, sock_factory)[0]
