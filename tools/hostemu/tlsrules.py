"""What MicroPython's `ssl` (the mbedTLS ports) accepts and how it fails: the one statement of
these rules that the emulated network (`hostemu.peripherals.netsvc` behind the device-side `ssl`
of the CPython runtime and the WebAssembly VM) follows, checked against the real unix port in
tests/unix.

From `extmod/modtls_mbedtls.c` and micropython-lib's `ssl.py` (1.24 to 1.28, and the 1.29
preview on PyPI), and seen on the unix port:
- `SSLContext(PROTOCOL_TLS_CLIENT).verify_mode` starts as CERT_NONE (ssl.py sets it): a client
  that does not ask for CERT_REQUIRED checks nothing.
- `load_verify_locations(cadata=...)` takes bytes or str (not a bytearray or memoryview), one
  DER certificate per call (of concatenated DER only the first is read); a second call adds to
  the trusted set. PEM is refused (`ValueError('invalid cert')`): the unix port had no PEM
  parser before 1.29 (ESP32's ESP-IDF mbedTLS has one; the rule here is the strictest).
- CERT_REQUIRED without `server_hostname` is `ValueError('CERT_REQUIRED requires server_hostname')`.
- A certificate that does not verify fails the handshake with `ValueError(<mbedTLS verify text>)`.
"""

from __future__ import annotations

import ssl

CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED = 0, 1, 2
INVALID_CERT = "invalid cert"
NEEDS_HOSTNAME = "CERT_REQUIRED requires server_hostname"

# mbedtls_x509_crt_verify_info() lines, as modtls_mbedtls.c puts them in the ValueError.
NOT_TRUSTED = "\nThe certificate is not correctly signed by the trusted CA\n"
NAME_MISMATCH = "\nThe certificate Common Name (CN) does not match with the expected CN\n"
EXPIRED = "\nThe certificate validity has expired\n"
_X509_V_ERR_CERT_HAS_EXPIRED = 10
_X509_V_ERR_HOSTNAME_MISMATCH = 62
_X509_V_ERR_IP_ADDRESS_MISMATCH = 64


def ca_certificate(cadata: object) -> bytes:
    """The DER certificate `load_verify_locations(cadata=...)` takes from `cadata`, or the
    error MicroPython raises for it."""
    if isinstance(cadata, str):
        cadata = cadata.encode()
    if not isinstance(cadata, bytes):
        raise TypeError(f"can't convert '{type(cadata).__name__}' object to str implicitly")
    end = _der_end(cadata)
    if end < 0:
        raise ValueError(INVALID_CERT)
    der = cadata[:end]
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
    except (ssl.SSLError, ValueError):
        raise ValueError(INVALID_CERT) from None
    return der


def _der_end(data: bytes) -> int:
    # Length of the DER SEQUENCE at the start of `data`, -1 if there is none.
    if len(data) < 2 or data[0] != 0x30:
        return -1
    n = data[1]
    if n < 0x80:
        end = 2 + n
    else:
        k = n & 0x7F
        if not 0 < k <= 3 or len(data) < 2 + k:
            return -1
        end = 2 + k + int.from_bytes(data[2:2 + k], "big")
    return end if end <= len(data) else -1


def check_wrap(verify_mode: int, server_hostname: str | None) -> None:
    if verify_mode == CERT_REQUIRED and server_hostname is None:
        raise ValueError(NEEDS_HOSTNAME)


def verify_failure(exc: ssl.SSLCertVerificationError) -> ValueError:
    """The ValueError MicroPython raises for what OpenSSL refused."""
    code = getattr(exc, "verify_code", 0)
    if code in (_X509_V_ERR_HOSTNAME_MISMATCH, _X509_V_ERR_IP_ADDRESS_MISMATCH):
        return ValueError(NAME_MISMATCH)
    if code == _X509_V_ERR_CERT_HAS_EXPIRED:
        return ValueError(EXPIRED)
    return ValueError(NOT_TRUSTED)
