"""MicroPython's `ssl` (mbedTLS ports) over the host's OpenSSL, by the rules of `hostemu.tlsrules`:
nothing is verified unless `verify_mode = CERT_REQUIRED` (an `SSLContext` starts at CERT_NONE, and
so does the legacy `ssl.wrap_socket()`); `cadata` is one DER certificate per call, PEM refused;
CERT_REQUIRED needs `server_hostname`; a failed check raises ValueError at the handshake; a
non-blocking read with nothing decrypted yet returns None.
"""

import errno as _errno
import socket as _host_socket
import ssl as _host_ssl
import sys as _sys

from hostemu import tlsrules as _rules
from hostemu.mp._stream import StreamReads


PROTOCOL_TLS_CLIENT = 0
PROTOCOL_TLS_SERVER = 1
CERT_NONE = 0
CERT_OPTIONAL = 1
CERT_REQUIRED = 2
MBEDTLS_VERSION = "Mbed TLS 3.6.2 (hostemu: host OpenSSL)"


class SSLError(OSError):
    pass


class SSLContext:
    def __init__(self, protocol):
        if protocol not in (PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER):
            raise ValueError("invalid protocol")
        self._protocol = protocol
        self.verify_mode = CERT_NONE  # micropython-lib's ssl.py: clients too
        self._cadata = []
        self._cert_chain = None

    def load_verify_locations(self, cafile=None, cadata=None):
        if cafile is not None:
            with open(cafile, "rb") as handle:
                cadata = handle.read()
        if cadata is None:
            raise ValueError("cafile or cadata must be given")
        self._cadata.append(_rules.ca_certificate(cadata))

    def load_cert_chain(self, certfile, keyfile):
        self._cert_chain = (certfile, keyfile)

    def set_ciphers(self, ciphers):
        return None

    def get_ciphers(self):
        return ["TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256"]

    def _host_context(self, server_hostname):
        if self._protocol == PROTOCOL_TLS_SERVER:
            context = _host_ssl.SSLContext(_host_ssl.PROTOCOL_TLS_SERVER)
            if self._cert_chain:
                context.load_cert_chain(*self._cert_chain)
            return context
        context = _host_ssl.SSLContext(_host_ssl.PROTOCOL_TLS_CLIENT)
        if self.verify_mode == CERT_REQUIRED:
            # With no CA loaded every handshake fails, as mbedTLS with VERIFY_REQUIRED does.
            for der in self._cadata:
                context.load_verify_locations(cadata=der)
            context.check_hostname = True  # wrap_socket() refused a missing name already
            context.verify_mode = _host_ssl.CERT_REQUIRED
        else:
            context.check_hostname = False
            context.verify_mode = _host_ssl.CERT_NONE
            print("hostemu: TLS without certificate verification (verify_mode is not CERT_REQUIRED)", file=_sys.stderr)
        return context

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        if not server_side and self._protocol == PROTOCOL_TLS_CLIENT:
            _rules.check_wrap(self.verify_mode, server_hostname)
        raw = sock._host_socket()
        context = self._host_context(server_hostname)
        try:
            wrapped = context.wrap_socket(
                raw,
                server_side=server_side or self._protocol == PROTOCOL_TLS_SERVER,
                do_handshake_on_connect=False,
                server_hostname=server_hostname if not server_side else None,
            )
        except _host_ssl.SSLError as exc:
            raise OSError(_errno.EIO) from exc
        # CPython detaches the plain socket it wraps; MicroPython's plain socket stays the
        # transport under the TLS one, so its settimeout/setblocking must reach the TLS socket.
        sock._sock = wrapped
        ssl_sock = SSLSocket(wrapped, sock)
        if do_handshake_on_connect and raw.gettimeout() != 0.0:
            ssl_sock._handshake()
        return ssl_sock


def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE, cadata=None,
                server_hostname=None, do_handshake=True):
    context = SSLContext(PROTOCOL_TLS_SERVER if server_side else PROTOCOL_TLS_CLIENT)
    if cert or key:
        context.load_cert_chain(cert, key)
    if cadata:
        context.load_verify_locations(cadata=cadata)
    context.verify_mode = cert_reqs
    return context.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=do_handshake,
                               server_hostname=server_hostname)


class SSLSocket(StreamReads):
    def __init__(self, wrapped, plain):
        self._sock = wrapped
        self._plain = plain
        self._handshaken = False

    def _handshake(self):
        from hostemu.mp import network

        if not network.is_link_up():
            raise OSError(_errno.ECONNABORTED)
        try:
            self._sock.do_handshake()
            self._handshaken = True
        except _host_ssl.SSLCertVerificationError as exc:
            print("hostemu: TLS certificate check failed:", exc.verify_message, file=_sys.stderr)
            raise _rules.verify_failure(exc) from None
        except (_host_ssl.SSLWantReadError, _host_ssl.SSLWantWriteError):
            raise
        except (_host_socket.timeout, TimeoutError):
            raise OSError(_errno.ETIMEDOUT) from None
        except _host_ssl.SSLError as exc:
            raise OSError(_errno.ECONNRESET) from exc
        except OSError as exc:
            raise OSError(exc.errno or _errno.EIO) from None

    def _ready(self):
        """Finish a deferred handshake; False when a non-blocking one needs more data."""
        if self._handshaken:
            return True
        try:
            self._handshake()
        except (_host_ssl.SSLWantReadError, _host_ssl.SSLWantWriteError):
            return False
        return True

    def _stream_recv(self, size):
        from hostemu.mp import network

        if not network.is_link_up():
            raise OSError(_errno.ECONNABORTED)
        if not self._ready():
            return None
        try:
            return self._sock.recv(size)
        except (_host_ssl.SSLWantReadError, _host_ssl.SSLWantWriteError, BlockingIOError):
            return None
        except (_host_socket.timeout, TimeoutError):
            raise OSError(_errno.ETIMEDOUT) from None
        except _host_ssl.SSLZeroReturnError:
            return b""
        except _host_ssl.SSLEOFError:
            return b""
        except _host_ssl.SSLError as exc:
            raise OSError(_errno.ECONNRESET) from exc
        except OSError as exc:
            raise OSError(exc.errno or _errno.EIO) from None

    def write(self, buf, nbytes=None):
        from hostemu.mp import network

        if isinstance(buf, str):  # MicroPython streams take str as its UTF-8 bytes
            buf = buf.encode()
        view = memoryview(buf)
        if nbytes is not None:
            view = view[:nbytes]
        if not network.is_link_up():
            raise OSError(_errno.ECONNABORTED)
        if not self._ready():
            return None
        try:
            if self._sock.gettimeout() == 0.0:
                return self._sock.send(view)
            self._sock.sendall(view)
            return len(view)
        except (_host_ssl.SSLWantReadError, _host_ssl.SSLWantWriteError, BlockingIOError):
            return None
        except (_host_socket.timeout, TimeoutError):
            raise OSError(_errno.ETIMEDOUT) from None
        except _host_ssl.SSLError as exc:
            raise OSError(_errno.ECONNRESET) from exc
        except OSError as exc:
            raise OSError(exc.errno or _errno.EIO) from None

    def setblocking(self, flag):
        self._sock.setblocking(bool(flag))

    def getpeercert(self, binary_form=False):
        return self._sock.getpeercert(binary_form=True)

    def cipher(self):
        return self._sock.cipher()[0]

    def close(self):
        try:
            self._sock.close()
        finally:
            self._plain.close()

    def _host_socket(self):
        return self._sock

    def _pending(self):
        return self._sock.pending()
