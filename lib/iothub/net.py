"""Sockets and TLS exactly as MicroPython exposes them (the runtime contract).

``open_stream`` returns an object with ``read``/``readinto``/``write``/``setblocking``/``close``:
a MicroPython (ssl) socket on a board, the host emulation layer's equivalent on a PC, or whatever a
test's ``sock_factory(host, port)`` returns. MicroPython's TLS sockets have no ``settimeout``:
a timeout is set on the plain socket under them, which ``open_pair`` also returns.
"""

from iothub.errors import ConfigError, TLSError

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


def _der_end(ca, i):
    # End of the DER certificate at ca[i]: a SEQUENCE (0x30) with a 1- to 3-byte length.
    if i + 2 > len(ca) or ca[i] != 0x30:
        return -1
    n = ca[i + 1]
    if n < 0x80:
        return i + 2 + n
    k = n & 0x7F
    if k > 3 or i + 2 + k > len(ca):
        return -1
    n = 0
    for j in range(k):
        n = n << 8 | ca[i + 2 + j]
    return i + 2 + k + n


def tls_context(ca, ctx=None):
    """A client SSLContext that verifies the server against ``ca``: one or more DER
    certificates back to back (what ``boardkit provision`` writes as ``ca.der``).

    Why DER, one certificate per call: MicroPython's mbedTLS ports take one DER certificate per
    ``load_verify_locations`` call (a second call adds to the trusted set), and PEM only where
    the port has a PEM parser (ESP32 yes, the unix port up to 1.28 no). CPython takes the same.
    Raises ``ConfigError`` for PEM, a truncated or invalid certificate, or a port whose ``ssl``
    cannot verify certificates at all (ESP8266's axTLS has no ``CERT_REQUIRED``). A context
    already built (``IoTHubClient`` passes its own to ``upload_file``) is returned as it is;
    ``ctx``, an empty one made earlier (``iothub.session.reserve``), is the one loaded.
    """
    if hasattr(ca, "wrap_socket"):
        return ca
    if not ca:
        raise ConfigError("a CA certificate is required to verify the server")
    if isinstance(ca, str) or ca[:5] == b"-----":
        raise ConfigError("the CA must be DER, not PEM text: MicroPython's ssl parses DER on every port "
                          "(boardkit provision writes ca.der)")
    ssl = ssl_module()
    required = getattr(ssl, "CERT_REQUIRED", None)
    if required is None:
        raise ConfigError("this port's ssl cannot verify a server certificate")
    if ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = required  # MicroPython's SSLContext verifies nothing unless told (CERT_NONE)
    if not isinstance(ca, bytes):
        ca = bytes(ca)  # load_verify_locations refuses a bytearray/memoryview on MicroPython
    i = 0
    count = 0
    while i < len(ca):
        end = _der_end(ca, i)
        if end < 0 or end > len(ca):
            raise ConfigError("CA certificate %d is not DER or is cut short" % (count + 1))
        try:
            ctx.load_verify_locations(cadata=ca if i == 0 and end == len(ca) else ca[i:end])
        except ValueError:
            raise ConfigError("CA certificate %d is not a valid certificate" % (count + 1))
        count += 1
        i = end
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
        # `| 0`: frozen code holds an int constant above 0x1FFF inside a tuple as a ROM long int,
        # which the unix port's getaddrinfo takes for a service name and refuses ("can't convert
        # 'int' object to str implicitly"); arithmetic makes it a small int again.
        addr = socket.getaddrinfo(host, port | 0, 0, socket.SOCK_STREAM)[0][-1]
        sock = socket.socket()
        try:
            sock.settimeout(timeout)
            _no_delay(socket, sock)
            sock.connect(addr)
        except BaseException:
            sock.close()
            raise
    if ctx is None:
        return sock, sock
    try:
        return ctx.wrap_socket(sock, server_hostname=host), sock
    except ValueError as e:
        # mbedTLS reports a certificate that does not verify (or a name that does not match) as
        # ValueError with its verify text; it is the server's, not the caller's, problem.
        sock.close()
        raise TLSError("TLS: the server was not verified: " + " ".join(str(e).split()))
    except BaseException:
        sock.close()
        raise


def _no_delay(socket, sock):
    # TCP_NODELAY: mbedTLS cuts a write into 4 KB records, so a Put Block of 4 KB plus its head
    # leaves as a full segment and a small one, and Nagle holds the small one until the peer's
    # delayed ACK (40-200 ms a block: a 1 MB upload took 12 s instead of 1 s). The unix port
    # has no constants for it (IPPROTO_TCP 6, TCP_NODELAY 1 on Linux and the ESP32's lwIP); on
    # the ESP8266 TCP_NODELAY is 64. A port without the option keeps Nagle.
    try:
        sock.setsockopt(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
    except (OSError, AttributeError, TypeError):
        pass


def open_stream(host, port, ctx=None, timeout=30, sock_factory=None):
    """``open_pair``'s stream alone, for callers that never change the timeout."""
    return open_pair(host, port, ctx, timeout, sock_factory)[0]
