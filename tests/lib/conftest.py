"""Fixtures of the library tests."""

import pytest

from tls_support import make_certificates


@pytest.fixture(scope="session")
def pki(tmp_path_factory, test_certificates):
    """The shared test CA and its server certificate as files, plus a CA that signed nothing
    here (for refusals): {"ca.pem", "ca.der", "other-ca.der", "server.pem", "server.key": path}.
    The library takes DER (what a board loads); ca.pem is for host-side clients."""
    folder = tmp_path_factory.mktemp("pki")
    files = {
        "ca.pem": test_certificates.ca_pem.encode(),
        "ca.der": test_certificates.ca_der,
        "other-ca.der": make_certificates(folder / "other", "some other CA").ca_der,
    }
    paths = {"server.pem": test_certificates.cert_path, "server.key": test_certificates.key_path}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths
