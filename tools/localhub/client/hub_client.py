"""A small synchronous HTTPS client of a running hub's REST API (for the CLI and localhub.testing).

It signs each request with a fresh service SAS of the ``iothubowner`` policy read from the state
folder, and trusts only the hub's own CA. Errors come back as :class:`HubRequestError` with the
HTTP status and IoT Hub error code.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from ..protocol import auth
from ..storage import certs, state

API_VERSION = "2021-04-12"


class HubRequestError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class HubNotRunning(Exception):
    pass


class HubClient:
    def __init__(self, host: str, port: int, sas_host: str, policy: str, key: str,
                 ca_path: Path, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.sas_host = sas_host
        self.policy = policy
        self.key = key
        self.timeout = timeout
        self.ssl = ssl.create_default_context(cafile=str(ca_path))

    @classmethod
    def from_state(cls, state_dir: Path, timeout: float = 30.0) -> "HubClient":
        runtime = state.read_runtime(state_dir)
        if runtime is None:
            raise HubNotRunning(f"no hub is serving from {state_dir} (runtime.json missing)")
        policies = state.load_policies(state_dir)
        return cls(runtime.host_for_clients(), runtime.https_port, runtime.advertised_host,
                   state.OWNER_POLICY, policies[state.OWNER_POLICY].key, state_dir / certs.CA_CERT,
                   timeout)

    def _token(self) -> str:
        return auth.generate_sas(self.sas_host, self.key, int(time.time()) + 3600, self.policy)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                params: dict[str, Any] | None = None, timeout: float | None = None,
                raw_body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
        """One request; ``body`` is sent as JSON, ``raw_body`` as given (for malformed-input tests)."""
        query = dict(params or {})
        if not path.startswith("/localhub/"):
            query.setdefault("api-version", API_VERSION)
        url = path + ("?" + urlencode(query) if query else "")
        hdrs = {"Authorization": self._token(), "Accept": "application/json"}
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs["Content-Type"] = "application/json; charset=utf-8"
        hdrs.update(headers or {})
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ssl,
                                           timeout=timeout or self.timeout)
        try:
            conn.request(method, url, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        payload = json.loads(raw) if raw and "json" in resp_headers.get("content-type", "") else raw
        if resp.status >= 400:
            code = resp_headers.get("iothub-errorcode", "Error")
            message = payload.get("Message", "") if isinstance(payload, dict) else str(payload)
            raise HubRequestError(resp.status, code, message)
        return resp.status, resp_headers, payload

    # --- conveniences ---------------------------------------------------------------------
    def create_device(self, device_id: str, primary_key: str | None = None,
                      secondary_key: str | None = None, status: str = "enabled") -> dict[str, Any]:
        body: dict[str, Any] = {"deviceId": device_id, "status": status,
                                "authentication": {"type": "sas", "symmetricKey": {
                                    "primaryKey": primary_key, "secondaryKey": secondary_key}}}
        return self.request("PUT", f"/devices/{quote(device_id, safe='')}", body)[2]

    def get_device(self, device_id: str) -> dict[str, Any]:
        return self.request("GET", f"/devices/{quote(device_id, safe='')}")[2]

    def list_devices(self) -> list[dict[str, Any]]:
        return self.request("GET", "/devices")[2]

    def delete_device(self, device_id: str) -> None:
        self.request("DELETE", f"/devices/{quote(device_id, safe='')}", headers={"If-Match": "*"})

    def create_module(self, device_id: str, module_id: str, primary_key: str | None = None,
                      secondary_key: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"deviceId": device_id, "moduleId": module_id,
                                "authentication": {"type": "sas", "symmetricKey": {
                                    "primaryKey": primary_key, "secondaryKey": secondary_key}}}
        return self.request("PUT", _module_path(device_id, module_id), body)[2]

    def get_module(self, device_id: str, module_id: str) -> dict[str, Any]:
        return self.request("GET", _module_path(device_id, module_id))[2]

    def list_modules(self, device_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/devices/{quote(device_id, safe='')}/modules")[2]

    def delete_module(self, device_id: str, module_id: str) -> None:
        self.request("DELETE", _module_path(device_id, module_id), headers={"If-Match": "*"})

    def get_twin(self, device_id: str) -> dict[str, Any]:
        return self.request("GET", f"/twins/{quote(device_id, safe='')}")[2]

    def update_twin(self, device_id: str, patch: dict[str, Any], etag: str = "*") -> dict[str, Any]:
        return self.request("PATCH", f"/twins/{quote(device_id, safe='')}", patch,
                            headers={"If-Match": f'"{etag}"' if etag != "*" else "*"})[2]

    def invoke_method(self, device_id: str, name: str, payload: Any = None,
                      timeout: int = 30) -> dict[str, Any]:
        body = {"methodName": name, "payload": payload, "responseTimeoutInSeconds": timeout}
        return self.request("POST", f"/twins/{quote(device_id, safe='')}/methods", body,
                            timeout=timeout + 10)[2]

    def query(self, sql: str, page_size: int = 100) -> list[Any]:
        items: list[Any] = []
        continuation = None
        while True:
            headers = {"x-ms-max-item-count": str(page_size)}
            if continuation:
                headers["x-ms-continuation"] = continuation
            _, resp_headers, page = self.request("POST", "/devices/query", {"query": sql}, headers)
            items.extend(page)
            continuation = resp_headers.get("x-ms-continuation")
            if not continuation:
                return items

    def send_c2d(self, device_id: str, body: str | bytes, properties: dict[str, str] | None = None,
                 message_id: str | None = None, ttl: int | None = None) -> str:
        msg: dict[str, Any] = {"properties": properties or {}}
        if isinstance(body, bytes):
            msg["bodyBase64"] = base64.b64encode(body).decode()
        else:
            msg["body"] = body
        if message_id:
            msg["messageId"] = message_id
        if ttl is not None:
            msg["ttlSeconds"] = ttl
        path = f"/localhub/devices/{quote(device_id, safe='')}/messages/devicebound"
        return self.request("POST", path, msg)[2]["messageId"]

    def read_telemetry(self, after: int = 0, device_id: str | None = None, wait: float = 0,
                       limit: int = 500) -> tuple[list[dict[str, Any]], int]:
        params: dict[str, Any] = {"after": after, "wait": wait, "limit": limit}
        if device_id:
            params["deviceId"] = device_id
        data = self.request("GET", "/localhub/telemetry", params=params, timeout=wait + 30)[2]
        return data["messages"], data["last"]


def _module_path(device_id: str, module_id: str) -> str:
    return f"/devices/{quote(device_id, safe='')}/modules/{quote(module_id, safe='')}"
