"""Run a real local hub from tests: :class:`HubProcess` and :func:`free_loopback_host`.

The hub runs as a SUBPROCESS (``python -m localhub serve``), so device code under test never
shares its process or event loop. Each hub listens on its own loopback address, on IoT Hub's
standard ports by default (the official device SDK can only dial 8883), so several hubs (and
several engineers' test runs) coexist on one machine::

    from localhub.testing import HubProcess

    with HubProcess(tmp_path / "hub") as hub:          # picks a free 127.x.y.z
        cs = hub.create_device("dev1")                 # HostName=127.x.y.z;DeviceId=dev1;SharedAccessKey=...
        ...                                            # device code connects to hub.host:hub.mqtt_port,
                                                       # trusting hub.ca_pem / hub.ca_path
        hub.telemetry("dev1")                          # [{"body", "properties", "systemProperties", ...}]
        hub.send_c2d("dev1", "hello", {"k": "v"})
        hub.invoke_method("dev1", "reboot", {"delay": 1}, timeout=10)  # {"status": .., "payload": ..}
        hub.get_twin("dev1"); hub.update_twin("dev1", {"properties": {"desired": {"x": 1}}})
        hub.kill(); hub.start()                        # outage, then restart on the same state

Names: ``HostName`` in device connection strings is the hub's listen IP, and the certificate
carries that IP and ``localhost``. The official ``azure-iot-device`` SDK additionally needs
``GatewayHostName`` (use :meth:`HubProcess.sdk_connection_string`) and
``server_verification_cert=hub.ca_pem``; ``azure-iot-hub`` takes
:attr:`HubProcess.service_connection_string` with ``REQUESTS_CA_BUNDLE=hub.ca_path`` set.

Errors: :class:`HubStartError` when the hub does not come up (its log is in the message);
REST failures raise :class:`localhub.client.HubRequestError` (``.status``, ``.code``).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..client import upload as upload_client
from ..client.hub_client import HubClient
from ..client.longpoll import collect
from ..storage import certs, state
from ..support.netutil import port_free

_TOOLS_DIR = Path(__file__).resolve().parents[2]


class HubStartError(RuntimeError):
    pass


def free_loopback_host(ports: tuple[int, ...] = (8883, 443), attempts: int = 200,
                       rng: random.Random | None = None) -> str:
    """A random 127.x.y.z where every port in ``ports`` can be bound right now.

    Never 127.0.0.1 and never a fixed address: other test runs on this machine pick too.
    """
    rng = rng or random.SystemRandom()
    for _ in range(attempts):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        if all(port_free(host, p) for p in ports):
            return host
    raise HubStartError(f"no free loopback address for ports {ports}")


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class HubProcess:
    """A local hub in a subprocess. Context manager: ``start()`` on enter, ``stop()`` on exit."""

    def __init__(self, state_dir: Path | str, host: str | None = None, mqtt_port: int = 8883,
                 https_port: int = 443, startup_timeout: float = 30.0,
                 serve_args: tuple[str, ...] = (), amqp_port: int = 5671) -> None:
        self.serve_args = tuple(serve_args)  # extra `serve` options, e.g. ("--upload-sas-ttl", "60")
        self.state_dir = Path(state_dir)
        self.host = host or free_loopback_host((mqtt_port, https_port, amqp_port))
        self.mqtt_port = mqtt_port
        self.https_port = https_port
        self.amqp_port = amqp_port
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: HubClient | None = None

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.state_dir / "hub.log"

    def start(self) -> "HubProcess":
        """Start (or restart, on the same state folder and address) and wait until both ports accept."""
        if self.proc is not None and self.proc.poll() is None:
            raise HubStartError("hub already running")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_TOOLS_DIR), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "localhub", "--state", str(self.state_dir), "serve",
               "--host", self.host, "--mqtt-port", str(self.mqtt_port),
               "--https-port", str(self.https_port), "--amqp-port", str(self.amqp_port), "-v",
               *self.serve_args]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HubStartError(f"hub exited with {self.proc.returncode}:\n{self._log_tail()}")
            runtime = state.read_runtime(self.state_dir)
            if (runtime is not None and runtime.pid == self.proc.pid
                    and all(_accepts(self.host, port)
                            for port in (self.mqtt_port, self.https_port, self.amqp_port))):
                self._client = None
                return self
            time.sleep(0.05)
        self.kill()
        raise HubStartError(f"hub not ready within {self.startup_timeout} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM), SIGKILL if it does not exit in time."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would: for outage and persistence tests."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> "HubProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- names, certificates, connection strings --------------------------------------------
    @property
    def ca_path(self) -> Path:
        return self.state_dir / certs.CA_CERT

    @property
    def ca_pem(self) -> str:
        return self.ca_path.read_text()

    @property
    def ca_der(self) -> bytes:
        """The CA as a board loads it (DER; see ``certs.der_bundle``)."""
        return certs.der_bundle(self.ca_pem)

    @property
    def hostname(self) -> str:
        """The HostName devices put in user names and SAS ``sr`` (the listen IP)."""
        return self.host

    @property
    def service_connection_string(self) -> str:
        return self.policy_connection_string(state.OWNER_POLICY)

    def eventhub_connection_string(self, policy: str = "service") -> str:
        """The Event Hub-compatible endpoint's connection string (azure-eventhub), for a policy
        that grants ServiceConnect; pass ``connection_verify=str(hub.ca_path)`` with it."""
        key = state.load_policies(self.state_dir)[policy].key
        return state.eventhub_connection_string(self.host, self.amqp_port, policy, key)

    def policy_connection_string(self, policy: str) -> str:
        """The service connection string of one shared access policy (its rights only)."""
        key = state.load_policies(self.state_dir)[policy].key
        return state.service_connection_string(self.host, self.https_port, key, policy)

    @property
    def client(self) -> HubClient:
        if self._client is None:
            key = state.load_policies(self.state_dir)[state.OWNER_POLICY].key
            self._client = HubClient(self.host, self.https_port, self.host, state.OWNER_POLICY,
                                     key, self.ca_path)
        return self._client

    def create_device(self, device_id: str, primary_key: str | None = None,
                      secondary_key: str | None = None, status: str = "enabled") -> str:
        """Register a device; return its connection string (``HostName=<ip>;DeviceId;SharedAccessKey``)."""
        dev = self.client.create_device(device_id, primary_key, secondary_key, status)
        return state.device_connection_string(self.host, device_id,
                                              dev["authentication"]["symmetricKey"]["primaryKey"])

    def create_module(self, device_id: str, module_id: str) -> str:
        """Register a module identity of a device; return its connection string."""
        mod = self.client.create_module(device_id, module_id)
        return state.module_connection_string(self.host, device_id, module_id,
                                              mod["authentication"]["symmetricKey"]["primaryKey"])

    def device_key(self, device_id: str, secondary: bool = False) -> str:
        keys = self.client.get_device(device_id)["authentication"]["symmetricKey"]
        return keys["secondaryKey" if secondary else "primaryKey"]

    def sdk_connection_string(self, device_connection_string: str) -> str:
        """Add ``GatewayHostName`` for azure-iot-device (it dials that name on port 8883)."""
        return state.sdk_connection_string(device_connection_string, self.host)

    # --- service operations ----------------------------------------------------------------
    def telemetry(self, device_id: str | None = None) -> list[dict[str, Any]]:
        """Every message received so far (oldest first): body (text or None), bodyBase64,
        properties (application), systemProperties (message-id, content-type, ...)."""
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            messages, after = self.client.read_telemetry(after, device_id, 0, 5000)
            out.extend(messages)
            if not messages:
                return out

    def wait_telemetry(self, device_id: str | None, count: int,
                       timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block (long poll, no sleeping) until ``count`` messages exist; return them all."""
        return collect(lambda after, wait: self.client.read_telemetry(after, device_id, wait), count, timeout,
                       "telemetry messages")

    def send_c2d(self, device_id: str, body: str | bytes,
                 properties: dict[str, str] | None = None, message_id: str | None = None,
                 ttl: int | None = None) -> str:
        """Queue a cloud-to-device message; return its message id."""
        return self.client.send_c2d(device_id, body, properties, message_id, ttl)

    def invoke_method(self, device_id: str, name: str, payload: Any = None,
                      timeout: int = 30) -> dict[str, Any]:
        """Invoke a direct method; ``{"status": int, "payload": ...}``. 404/504 raise HubRequestError."""
        return self.client.invoke_method(device_id, name, payload, timeout)

    def get_twin(self, device_id: str) -> dict[str, Any]:
        return self.client.get_twin(device_id)

    def update_twin(self, device_id: str, patch: dict[str, Any], etag: str = "*") -> dict[str, Any]:
        """PATCH the twin: ``{"tags": {...}, "properties": {"desired": {...}}}`` (null deletes)."""
        return self.client.update_twin(device_id, patch, etag)

    def query(self, sql: str) -> list[Any]:
        return self.client.query(sql)

    # --- file upload (localhub.client.upload; Azurite starts on first use) ------------------
    def upload_notifications(self, device_id: str | None = None) -> list[dict[str, Any]]:
        """Every upload notification so far (oldest first): deviceId, blobName, blobUri,
        blobSizeInBytes, isSuccess, statusCode, statusDescription, correlationId, ..."""
        return upload_client.all_notifications(self.client, device_id)

    def wait_upload_notifications(self, device_id: str | None, count: int,
                                  timeout: float = 10.0) -> list[dict[str, Any]]:
        return upload_client.wait_notifications(self.client, device_id, count, timeout)

    def storage_info(self) -> dict[str, Any]:
        """``{connectionString, accountName, blobEndpoint, container, hostName, containerName}``."""
        return upload_client.storage_info(self.client)

    def blob_service_client(self) -> Any:
        """``azure.storage.blob.BlobServiceClient`` on the hub's storage, trusting the hub's CA."""
        return upload_client.blob_service_client(self.client, self.ca_path)

    def read_blob(self, blob_name: str) -> bytes:
        """Bytes of ``{deviceId}/{name}`` in the upload container (azure-storage-blob)."""
        return upload_client.read_blob(self.client, self.ca_path, blob_name)
