"""`provision` writes config.json and the CA a board trusts, and never shows the key."""

import json
import subprocess
import sys

import pytest
from cryptography import x509

from boardkit import provision

def _der_certificates(data: bytes) -> list[x509.Certificate]:
    """The DER certificates laid end to end in a board's CA file."""
    out = []
    while data:
        assert data[0] == 0x30 and data[1] == 0x82, "DER SEQUENCE with a 2-byte length"
        end = 4 + int.from_bytes(data[2:4], "big")
        out.append(x509.load_der_x509_certificate(data[:end]))
        data = data[end:]
    return out


AZURE_CS = "HostName=myhub.azure-devices.net;DeviceId=sensor-7;SharedAccessKey=c2VjcmV0LWtleS1ub3QtdG8tYmUtbG9nZ2VkIQ=="


def test_azure_provision_carries_both_roots_and_no_key_in_output(tmp_path):
    out = tmp_path / "cfg"
    result = subprocess.run(
        [sys.executable, "-m", "boardkit.cli", "provision", "--out", str(out), "--wifi", "home:pw",
         "--connection-string", AZURE_CS], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "c2VjcmV0" not in result.stdout + result.stderr
    assert "sensor-7" in result.stderr and "myhub.azure-devices.net" in result.stderr
    roots = _der_certificates((out / "ca.der").read_bytes())
    names = {r.subject.rfc4514_string() for r in roots}
    assert any("DigiCert Global Root G2" in n for n in names)
    assert any("Microsoft RSA Root Certificate Authority 2017" in n for n in names)
    config = json.loads((out / "config.json").read_text())
    assert config == {"wifi": {"ssid": "home", "password": "pw"}, "connection_string": AZURE_CS,
                      "ca_file": "ca.der", "telemetry_interval": 10}
    assert (out / "config.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("bad, words", [
    ("HostName=h;DeviceId=d", "SharedAccessKey is missing"),
    ("HostName=h;DeviceId=d;SharedAccessKey=", "SharedAccessKey is empty"),
    ("HostName=h;DeviceId=d;SharedAccessKey=not base64!", "SharedAccessKey is not valid base64"),
    # A key pasted alone must not come back in the message.
    ("c2VjcmV0LWtleS1ub3QtdG8tYmUtbG9nZ2VkIQ==", "unknown name in segment 1"),
    ("c2VjcmV0LWtleS1ub3QtdG8tYmUtbG9nZ2VkIQ", "segment 1 is not Name=value"),
])
def test_malformed_connection_strings_are_refused_without_echoing_keys(tmp_path, bad, words):
    with pytest.raises(provision.ProvisionError, match=words) as refused:
        provision.from_azure(tmp_path, bad, "home", "pw")
    assert "c2VjcmV0" not in str(refused.value)
    assert not (tmp_path / "config.json").exists()


def test_local_hub_provision_creates_the_device_and_uses_the_hub_ca(tmp_path):
    hub_state = tmp_path / "hub"
    first = provision.from_local_hub(tmp_path / "a", hub_state, "dev-1", "hostemu", "hostemu", 5)
    second = provision.from_local_hub(tmp_path / "b", hub_state, "dev-1", "hostemu", "hostemu", 5)
    config_a = json.loads(first.config_path.read_text())
    config_b = json.loads(second.config_path.read_text())
    assert config_a == config_b  # the same device, not a new one
    assert "DeviceId=dev-1;" in config_a["connection_string"]
    hub_ca = x509.load_pem_x509_certificate((hub_state / "ca.pem").read_bytes())
    assert [c.subject for c in _der_certificates(first.ca_path.read_bytes())] == [hub_ca.subject]
    assert config_a["telemetry_interval"] == 5
