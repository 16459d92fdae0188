"""The state folder: shared access policies, the runtime record of a serving hub, file names.

Layout of a state folder::

    hub.json        shared access policies (iothubowner, service, device, registryRead,
                    registryReadWrite): keys and rights (protocol/rights.py)
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

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..protocol.auth import new_key
from ..protocol.rights import DEFAULT_POLICIES, Policy, Right, format_rights, parse_rights

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
    amqp_port: int = 5671

    def https_base(self) -> str:
        return f"https://{self.host_for_clients()}:{self.https_port}"

    def host_for_clients(self) -> str:
        """Where a local client should connect (a wildcard listen address is not dialable)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host


def load_policies(state_dir: Path) -> dict[str, Policy]:
    """Shared access policies with their keys and rights, created on first use (the keys never
    leave the state folder). A folder from before rights were enforced gets the default policies
    it lacks (device, registryRead) and its rights written out; a policy hub.json names without
    rights, and that is not a default one, grants nothing."""
    state_dir.mkdir(parents=True, exist_ok=True)
    # `serve` and a CLI call may load a fresh folder at once: one of them creates the keys.
    with open(state_dir / (HUB_JSON + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _load_or_create_policies(state_dir)


def _load_or_create_policies(state_dir: Path) -> dict[str, Policy]:
    path = state_dir / HUB_JSON
    data = json.loads(path.read_text()) if path.exists() else {}
    keys: dict[str, str] = dict(data.get("policies", {}))
    written: dict[str, str] = dict(data.get("rights", {}))
    changed = not path.exists()
    for name in DEFAULT_POLICIES:
        if name not in keys:
            keys[name] = new_key()
            changed = True
    policies: dict[str, Policy] = {}
    for name, key in keys.items():
        if name in written:
            granted = parse_rights(written[name])
        else:
            granted = DEFAULT_POLICIES.get(name, Right.NONE)
            changed = True
        policies[name] = Policy(name, key, granted)
    if changed:
        _write_policies(state_dir, policies)
    return policies


def _write_policies(state_dir: Path, policies: dict[str, Policy]) -> None:
    tmp = state_dir / (HUB_JSON + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"policies": {p.name: p.key for p in policies.values()},
                   "rights": {p.name: format_rights(p.rights) for p in policies.values()}},
                  fh, indent=2)
    tmp.replace(state_dir / HUB_JSON)


def write_runtime(state_dir: Path, runtime: Runtime) -> None:
    tmp = state_dir / (RUNTIME_JSON + ".tmp")
    tmp.write_text(json.dumps({
        "pid": runtime.pid, "host": runtime.host, "mqttPort": runtime.mqtt_port,
        "httpsPort": runtime.https_port, "advertisedHost": runtime.advertised_host,
        "amqpPort": runtime.amqp_port,
    }))
    tmp.replace(state_dir / RUNTIME_JSON)


def read_runtime(state_dir: Path) -> Runtime | None:
    path = state_dir / RUNTIME_JSON
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Runtime(data["pid"], data["host"], data["mqttPort"], data["httpsPort"],
                   data["advertisedHost"], data.get("amqpPort", 5671))


def clear_runtime(state_dir: Path, pid: int) -> None:
    runtime = read_runtime(state_dir)
    if runtime is not None and runtime.pid == pid:
        (state_dir / RUNTIME_JSON).unlink(missing_ok=True)


def device_connection_string(host: str, device_id: str, key: str) -> str:
    return f"HostName={host};DeviceId={device_id};SharedAccessKey={key}"


def module_connection_string(host: str, device_id: str, module_id: str, key: str) -> str:
    """What ``IoTHubModuleClient.create_from_connection_string`` takes."""
    return f"HostName={host};DeviceId={device_id};ModuleId={module_id};SharedAccessKey={key}"


def sdk_connection_string(device_connection_string: str, gateway: str) -> str:
    """Add ``GatewayHostName`` for the official azure-iot-device SDK (it dials that name)."""
    return f"{device_connection_string};GatewayHostName={gateway}"


def service_connection_string(host: str, https_port: int, key: str,
                              policy: str = OWNER_POLICY) -> str:
    """What azure-iot-hub takes; the port rides in HostName unless it is 443."""
    hostname = host if https_port == 443 else f"{host}:{https_port}"
    return f"HostName={hostname};SharedAccessKeyName={policy};SharedAccessKey={key}"


# The Event Hub-compatible name of the hub's built-in endpoint (the connection string's EntityPath).
EVENTHUB_NAME = "localhub"


def eventhub_connection_string(host: str, amqp_port: int, policy: str, key: str,
                               entity: str = EVENTHUB_NAME) -> str:
    """The Event Hub-compatible connection string (azure-eventhub); the port rides in the
    endpoint unless it is 5671."""
    endpoint = host if amqp_port == 5671 else f"{host}:{amqp_port}"
    return (f"Endpoint=sb://{endpoint}/;SharedAccessKeyName={policy};SharedAccessKey={key};"
            f"EntityPath={entity}")


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
