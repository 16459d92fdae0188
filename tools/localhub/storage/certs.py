"""The hub's development CA and its server certificate, made with ``cryptography``.

On first run the state folder gets ``ca.pem``/``ca.key`` (10 years) and the server gets
``server.pem``/``server.key`` signed by it. The server certificate is re-issued whenever the set
of names it must carry changes (a new listen address, a new LAN address), so a client that trusts
``ca.pem`` always verifies the hub by whichever name or IP it dialled.

RSA 2048 with SHA-256: every TLS stack a board may run (mbedTLS, and axTLS on old ESP8266
firmware, which has no ECDSA) accepts it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def der_bundle(pem: str | bytes) -> bytes:
    """The certificates of a PEM text as DER, back to back: the CA file a board loads.

    MicroPython's ssl parses DER only on some ports and versions (the unix port up to 1.28 has no
    PEM parser; ESP32 has one), and takes one DER certificate per `load_verify_locations` call:
    `iothub.net.tls_context` splits this bundle and loads each in turn, which works everywhere."""
    data = pem.encode() if isinstance(pem, str) else pem
    return b"".join(c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(data))


def lan_address() -> str | None:
    """The address this machine uses towards the LAN (no packet is sent), or None offline."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect(("10.255.255.255", 1))
        addr = sock.getsockname()[0]
        return None if addr.startswith("127.") or addr == "0.0.0.0" else addr
    except OSError:
        return None
    finally:
        sock.close()


def ensure_ca(state_dir: Path) -> tuple[Path, Path]:
    """Create the CA on first use; return (cert path, key path)."""
    cert_path, key_path = state_dir / CA_CERT, state_dir / CA_KEY
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "localhub development CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"localhub CA {socket.gethostname()}"[:64]),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _split_names(names: list[str]) -> tuple[list[str], list[str]]:
    dns, ips = [], []
    for name in names:
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.append(name.lower())
    return sorted(set(dns)), sorted(set(ips))


def _cert_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    dns = sorted(set(n.lower() for n in san.get_values_for_type(x509.DNSName)))
    ips = sorted(set(str(i) for i in san.get_values_for_type(x509.IPAddress)))
    return dns, ips


def ensure_server_cert(state_dir: Path, names: list[str]) -> tuple[Path, Path]:
    """Issue (or reuse) the server certificate carrying exactly ``names`` (host names and IPs)."""
    ca_cert_path, ca_key_path = ensure_ca(state_dir)
    cert_path, key_path = state_dir / SERVER_CERT, state_dir / SERVER_KEY
    dns, ips = _split_names(names)
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        fresh = current.not_valid_after_utc - now > datetime.timedelta(days=30)
        if fresh and _cert_names(current) == (dns, ips):
            return cert_path, key_path
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise ValueError("ca.key is not an RSA key")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    san = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cn = (dns or ips or ["localhub"])[0]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
