"""The state folder: shared access policies, the runtime record of a serving hub, file names.

Layout of a state folder::

    hub.json        shared access policies (iothubowner, service, registryReadWrite) and keys
    hub.sqlite3     devices, twins, pending C2D, recent telemetry (see store.py)
    ca.pem ca.key   the development CA (see certs.py); server.pem server.key its server cert
    runtime.json    written by `serve`: pid, listen host, ports, advertised host name

Host names: a device connection string carries ``HostName=<advertised host>``, the address a
device dials (the listen IP, or the LAN address when listening on every interface). The hub
accepts any of its names (that host, ``localhost``, its listen and LAN IPs, the machine name) in
MQTT user names and SAS ``sr`` fields, so tokens made for any of them verify. The official device
SDK also wants ``GatewayHostName=<ip>``; :func:`sdk_connection_string` adds it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .auth import new_key

HUB_JSON = "hub.json"
RUNTIME_JSON = "runtime.json"
DB_FILE = "hub.sqlite3"
OWNER_POLICY = "iothubowner"


@dataclass
class Runtime:
    pid: int
    host: str
    mqtt_port: int
    https_port: int
    advertised_host: str

    def https_base(self) -> str:
        return f"https://{self.host_for_clients()}:{self.https_port}"

    def host_for_clients(self) -> str:
        """Where a local client should connect (a wildcard listen address is not dialable)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host


def load_policies(state_dir: Path) -> dict[str, str]:
    """Policies and keys, created on first use (owner key never leaves the state folder)."""
    path = state_dir / HUB_JSON
    if path.exists():
        data = json.loads(path.read_text())
        return dict(data["policies"])
    state_dir.mkdir(parents=True, exist_ok=True)
    policies = {OWNER_POLICY: new_key(), "service": new_key(), "registryReadWrite": new_key()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"policies": policies}, fh, indent=2)
    return policies


def write_runtime(state_dir: Path, runtime: Runtime) -> None:
    tmp = state_dir / (RUNTIME_JSON + ".tmp")
    tmp.write_text(json.dumps({
        "pid": runtime.pid, "host": runtime.host, "mqttPort": runtime.mqtt_port,
        "httpsPort": runtime.https_port, "advertisedHost": runtime.advertised_host,
    }))
    tmp.replace(state_dir / RUNTIME_JSON)


def read_runtime(state_dir: Path) -> Runtime | None:
    path = state_dir / RUNTIME_JSON
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Runtime(data["pid"], data["host"], data["mqttPort"], data["httpsPort"],
                   data["advertisedHost"])


def clear_runtime(state_dir: Path, pid: int) -> None:
    runtime = read_runtime(state_dir)
    if runtime is not None and runtime.pid == pid:
        (state_dir / RUNTIME_JSON).unlink(missing_ok=True)


def device_connection_string(host: str, device_id: str, key: str) -> str:
    return f"HostName={host};DeviceId={device_id};SharedAccessKey={key}"


def sdk_connection_string(device_connection_string: str, gateway: str) -> str:
    """Add ``GatewayHostName`` for the official azure-iot-device SDK (it dials that name)."""
    return f"{device_connection_string};GatewayHostName={gateway}"


def service_connection_string(host: str, https_port: int, key: str,
                              policy: str = OWNER_POLICY) -> str:
    """What azure-iot-hub takes; the port rides in HostName unless it is 443."""
    hostname = host if https_port == 443 else f"{host}:{https_port}"
    return f"HostName={hostname};SharedAccessKeyName={policy};SharedAccessKey={key}"


def parse_connection_string(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError("connection string field without '='")
        fields[key] = value
    return fields
