# MicroPython's `ssl` (mbedTLS ports) for the hostemu VM. The TLS session runs in the Python
# parent, which checks the server certificate against exactly the CA data given here.
#
# As on the board (hostemu/tlsrules.py): nothing is verified unless verify_mode is CERT_REQUIRED
# (SSLContext starts at CERT_NONE, as the legacy ssl.wrap_socket() does); cadata is one DER
# certificate per load_verify_locations call, PEM refused at once (ValueError('invalid cert'));
# CERT_REQUIRED needs server_hostname; a failed check raises ValueError with mbedTLS's text from
# the handshake. A blocking socket shakes hands in wrap_socket(); a non-blocking one on its first
# read or write.

from micropython import const
import _hostemu
import socket as _socket

PROTOCOL_TLS_CLIENT = const(0)
PROTOCOL_TLS_SERVER = const(1)
CERT_NONE = const(0)
CERT_OPTIONAL = const(1)
CERT_REQUIRED = const(2)
MBEDTLS_VERSION = "Mbed TLS (hostemu: host OpenSSL)"

_call = _hostemu.call
_call_out = _hostemu.call_out
_addressof = _hostemu.addressof
_SVC = "socket"


def _read_file(path):
    with open(path, "rb") as f:
        return f.read()


class SSLContext:
    def __init__(self, protocol):
        if protocol != PROTOCOL_TLS_CLIENT and protocol != PROTOCOL_TLS_SERVER:
            raise ValueError("invalid protocol")
        self._protocol = protocol
        self.verify_mode = CERT_NONE
        self._cadata = []
        self._cert = None
        self._key = None

    def load_verify_locations(self, cafile=None, cadata=None):
        if cafile is not None:
            cadata = _read_file(cafile)
        if cadata is None:
            raise ValueError("cafile or cadata must be given")
        if isinstance(cadata, str):
            cadata = cadata.encode()
        if not isinstance(cadata, bytes):
            raise TypeError("can't convert '%s' object to str implicitly" % type(cadata).__name__)
        _call_out(_SVC, "check_ca", _addressof(cadata), len(cadata))
        self._cadata.append(cadata)

    def load_cert_chain(self, certfile, keyfile):
        # MicroPython takes file names or the DER/PEM bytes themselves.
        self._cert = _read_file(certfile) if isinstance(certfile, str) else certfile
        self._key = _read_file(keyfile) if isinstance(keyfile, str) else keyfile

    def set_ciphers(self, ciphers):
        pass

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        if server_side or self._protocol == PROTOCOL_TLS_SERVER:
            raise OSError(95)  # EOPNOTSUPP: the VM bridges TLS clients only
        h = sock._handle()
        for blob in self._cadata:
            _call_out(_SVC, "tls_ca", _addressof(blob), len(blob), h)
        if self._cert is not None:
            _call_out(_SVC, "tls_cert", _addressof(self._cert), len(self._cert), h)
            _call_out(_SVC, "tls_key", _addressof(self._key), len(self._key), h)
        _call(_SVC, "tls", h, server_hostname, self.verify_mode, 1 if do_handshake_on_connect else 0)
        return SSLSocket(h)


def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE, cadata=None,
                server_hostname=None, do_handshake=True):
    ctx = SSLContext(PROTOCOL_TLS_SERVER if server_side else PROTOCOL_TLS_CLIENT)
    if cadata is not None:
        ctx.load_verify_locations(cadata=cadata)
    if cert is not None or key is not None:
        ctx.load_cert_chain(cert, key)
    ctx.verify_mode = cert_reqs
    return ctx.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=do_handshake,
                           server_hostname=server_hostname)


class SSLSocket(_socket.socket):
    # Shares the stream methods of socket: the host routes them through the TLS session of the
    # same handle. Only the constructor differs (no new host socket).
    def __init__(self, handle):
        self._h = handle

    def settimeout(self, value):
        raise AttributeError("settimeout")  # not on mbedTLS SSLSocket: set it on the socket first

    def getpeercert(self, binary_form=False):
        if not binary_form:
            return None
        n = _call(_SVC, "peercert_len", self._handle())
        buf = bytearray(n)
        _hostemu.call_in(_SVC, "peercert", _addressof(buf), n, self._h)
        return bytes(buf)

    def cipher(self):
        return _call(_SVC, "cipher", self._handle())
