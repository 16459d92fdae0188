"""Make a board's configuration: `config.json` and the CA it trusts, from a local-hub device
(created if it does not exist) or from an Azure IoT Hub device connection string.

What the firmware reads (`config.json` on the board's root)::

    {
      "wifi": {"ssid": "...", "password": "..."},
      "connection_string": "HostName=...;DeviceId=...;SharedAccessKey=...",
      "ca_file": "ca.der",              # DER: the root certificate(s) the hub's chain ends in, back to back
      "telemetry_interval": 10          # seconds
    }

For Azure the CA file holds the two roots IoT Hub's certificates chain to (DigiCert Global Root G2
and Microsoft RSA Root Certificate Authority 2017), taken from `certifi`'s maintained bundle. The
connection string carries the device key: it is written to the config file only, never printed.

Why DER, not PEM: MicroPython's ssl parses PEM on ESP32 (ESP-IDF's mbedTLS) but not on the unix
port up to 1.28, and ESP8266 (axTLS) loads no CA at all; every mbedTLS port takes one DER
certificate per `load_verify_locations` call, and further calls add to the trusted set. So the
board gets DER certificates back to back and `iothub.net.tls_context` loads them one by one.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from iothub import connstr
from iothub.connstr import ConnectionString
from iothub.errors import ConfigError
from localhub.storage.certs import der_bundle

AZURE_ROOT_NAMES = ("DigiCert Global Root G2", "Microsoft RSA Root Certificate Authority 2017")
CONFIG_FILE = "config.json"
CA_FILE = "ca.der"


class ProvisionError(ValueError):
    pass


@dataclass(frozen=True)
class Provisioned:
    device_id: str
    host_name: str
    config_path: Path
    ca_path: Path
    ca_subjects: tuple[str, ...]

    def summary(self) -> str:
        """What may be shown: where the files are, for which device and hub; never the key."""
        roots = "; ".join(self.ca_subjects)
        return (f"device {self.device_id} on {self.host_name}: {self.config_path} (key stored, not shown), "
                f"CA {self.ca_path} [{roots}]")


def azure_roots_pem() -> str:
    """The two roots of Azure IoT Hub's certificate chains, from certifi's bundle."""
    with warnings.catch_warnings():
        # Some old roots in the bundle have non-positive serial numbers; they are not ours.
        warnings.simplefilter("ignore")
        bundle = x509.load_pem_x509_certificates(Path(certifi.where()).read_bytes())
    found: dict[str, x509.Certificate] = {}
    for certificate in bundle:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names and names[0].value in AZURE_ROOT_NAMES:
            found[str(names[0].value)] = certificate
    missing = [name for name in AZURE_ROOT_NAMES if name not in found]
    if missing:
        raise ProvisionError(f"certifi's bundle lacks {', '.join(missing)}")
    return "".join(found[name].public_bytes(serialization.Encoding.PEM).decode() for name in AZURE_ROOT_NAMES)


def parse_connection_string(text: str) -> ConnectionString:
    """Check a device connection string with the board's own parser (`iothub.connstr`), so what
    is provisioned is what the board accepts; its errors never repeat the key."""
    try:
        return connstr.parse(text)
    except ConfigError as exc:
        raise ProvisionError(str(exc)) from None


def _subjects(pem: str) -> tuple[str, ...]:
    return tuple(cert.subject.rfc4514_string() for cert in x509.load_pem_x509_certificates(pem.encode()))


def write_config(out_dir: Path, connection_string: str, ca_pem: str, wifi_ssid: str, wifi_password: str,
                 telemetry_interval: int = 10) -> Provisioned:
    parsed = parse_connection_string(connection_string)
    if not wifi_ssid:
        raise ProvisionError("wifi: an SSID is needed")
    if telemetry_interval < 1:
        raise ProvisionError("telemetry_interval: at least 1 second")
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "wifi": {"ssid": wifi_ssid, "password": wifi_password},
        "connection_string": connection_string.strip(),
        "ca_file": CA_FILE,
        "telemetry_interval": telemetry_interval,
    }
    config_path = out_dir / CONFIG_FILE
    # The key is in this file: readable by its owner only.
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=1)
        handle.write("\n")
    ca_path = out_dir / CA_FILE
    ca_path.write_bytes(der_bundle(ca_pem))
    return Provisioned(parsed.device_id, parsed.host, config_path, ca_path, _subjects(ca_pem))


def from_azure(out_dir: Path, connection_string: str, wifi_ssid: str, wifi_password: str,
               telemetry_interval: int = 10) -> Provisioned:
    return write_config(out_dir, connection_string, azure_roots_pem(), wifi_ssid, wifi_password, telemetry_interval)


def from_local_hub(out_dir: Path, hub_state: Path, device_id: str, wifi_ssid: str, wifi_password: str,
                   telemetry_interval: int = 10) -> Provisioned:
    """Provision for a device of the local hub in `hub_state`, creating the device if needed."""
    from localhub.cli.main import Ctx
    from localhub.client.hub_client import HubRequestError
    from localhub.protocol.errors import HubError
    from localhub.storage import certs, state

    hub = Ctx(hub_state)
    try:
        keys = hub.device_keys(device_id)
    except (HubRequestError, HubError):
        client = hub.client()
        if client is not None:
            client.create_device(device_id, None, None, "enabled")
        else:
            registry = hub.offline_registry()
            registry.create(device_id, None, None, "enabled")
        keys = hub.device_keys(device_id)
    connection_string = state.device_connection_string(hub.advertised_host(), device_id, keys["primaryKey"])
    ca_path, _key = certs.ensure_ca(hub_state)
    return write_config(out_dir, connection_string, ca_path.read_text(), wifi_ssid, wifi_password, telemetry_interval)
