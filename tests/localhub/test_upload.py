"""File upload on the local hub: device endpoints, Azurite blob storage, notifications.

Everything end to end over TLS: the hub runs as a subprocess and starts Azurite (Node) on first
use; devices are the official azure-iot-device SDK with azure-storage-blob, or plain HTTP from
the test (Put Block x N + Put Block List, as this project's device library does it).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import pytest
from azure.iot.device import IoTHubDeviceClient
from azure.storage.blob import BlobClient
from localhub.protocol import auth
from localhub.protocol.errors import HubError
from localhub.services.uploads import check_blob_name
from localhub.storage import state
from localhub.storage.blob import (
    SAS_VERSION,
    account_sas,
    blob_sas,
    parse_storage_connection_string,
)
from localhub.testing import HubProcess

TOOLS = Path(__file__).resolve().parents[2] / "tools"
API = "2021-04-12"


# --- helpers: a device speaking plain HTTPS -----------------------------------------------------
def _ctx(hub: HubProcess) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(hub.ca_path))


def _https(host: str, port: int, hub: HubProcess, method: str, path: str,
           body: bytes | None = None, headers: dict[str, str] | None = None
           ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPSConnection(host, port, context=_ctx(hub), timeout=30)
    try:
        hdrs = dict(headers or {})
        hdrs["Content-Length"] = str(len(body or b""))  # Azurite refuses chunked bodies
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _device_token(hub: HubProcess, device_id: str, ttl: int = 3600) -> str:
    return auth.generate_sas(f"{hub.hostname}/devices/{device_id}", hub.device_key(device_id),
                             int(time.time()) + ttl)


def _device_post(hub: HubProcess, device_id: str, path: str, body: Any,
                 token: str | None = None, api_version: str | None = API
                 ) -> tuple[int, dict[str, str], Any]:
    query = f"?{urlencode({'api-version': api_version})}" if api_version else ""
    headers = {"Content-Type": "application/json"}
    if token is None:
        token = _device_token(hub, device_id)
    if token:
        headers["Authorization"] = token
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, hdrs, data = _https(hub.host, hub.https_port, hub, "POST",
                                f"/devices/{quote(device_id, safe='')}{path}{query}", raw, headers)
    return status, hdrs, json.loads(data) if data and "json" in hdrs.get("content-type", "") else data


def _start_upload(hub: HubProcess, device_id: str, name: str) -> dict[str, Any]:
    status, _, info = _device_post(hub, device_id, "/files", {"blobName": name})
    assert status == 200, info
    return info


def _blob_target(info: dict[str, Any]) -> tuple[str, int, str]:
    """(host, port, path+query) of ``https://{hostName}/{containerName}/{blobName}{sasToken}``."""
    url = "https://{}/{}/{}{}".format(info["hostName"], info["containerName"], info["blobName"],
                                      info["sasToken"])
    rest = url[len("https://"):]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port or 443), "/" + path


@pytest.fixture(scope="module")
def upload_hub(module_hub: HubProcess) -> HubProcess:
    return module_hub


@pytest.fixture
def device(upload_hub: HubProcess, request: pytest.FixtureRequest) -> str:
    device_id = "up-" + request.node.name.replace("_", "-")[:40]
    upload_hub.create_device(device_id)
    return device_id


# --- pure parts ------------------------------------------------------------------------------------
def test_sas_signatures_equal_azure_storage_blob() -> None:
    """Same string to sign as the official SDK (which only signs for its own newest version)."""
    from azure.storage.blob import (
        AccountSasPermissions,
        ResourceTypes,
        generate_account_sas,
        generate_blob_sas,
    )
    from azure.storage.blob._shared.constants import X_MS_VERSION

    key = base64.b64encode(b"k" * 64).decode()
    expiry, se = 1_900_000_000, "2030-03-17T17:46:40Z"
    ours = parse_qs(blob_sas("acct", key, "fileupload", "dev 1/a b.bin", "cw", expiry,
                             version=X_MS_VERSION))
    theirs = parse_qs(generate_blob_sas("acct", "fileupload", "dev 1/a b.bin", account_key=key,
                                        permission="cw", expiry=se, protocol="https"))
    assert ours == theirs
    ours = parse_qs(account_sas("acct", key, "rc", expiry, version=X_MS_VERSION))
    theirs = parse_qs(generate_account_sas(
        "acct", key, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, create=True), expiry=se, protocol="https", services="b"))
    assert ours == theirs
    issued = parse_qs(blob_sas("acct", key, "c", "d/x", "cw", expiry))
    assert issued["sr"] == ["b"] and issued["sp"] == ["cw"] and issued["sv"] == [SAS_VERSION]


@pytest.mark.parametrize("name", ["", "../x", "a/../b", "a/./b", "a//b", "/abs", "dir/",
                                  "x\x01y", "tab\tname", "new\nline", "a\\b", "end.",
                                  "x" * 1025, 42, None])
def test_bad_blob_names_are_refused(name: Any) -> None:
    with pytest.raises(HubError) as err:
        check_blob_name(name)
    assert err.value.status == 400


@pytest.mark.parametrize("name", ["a.bin", "logs/2026/11/24.json", "day 1.bin", "ü/é+%.txt",
                                  "a..b", "x" * 1024])
def test_good_blob_names_are_kept(name: str) -> None:
    assert check_blob_name(name) == name


def test_storage_connection_strings() -> None:
    key = base64.b64encode(b"0" * 64).decode()
    azure = parse_storage_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};"
        "EndpointSuffix=core.windows.net")
    assert (azure.public_host, azure.path_prefix) == ("acct.blob.core.windows.net", "")
    assert azure.public_url("c", "d/x y") == "https://acct.blob.core.windows.net/c/d/x%20y"
    emulator = parse_storage_connection_string(
        f"AccountName=devstoreaccount1;AccountKey={key};"
        "BlobEndpoint=https://127.0.0.5:10000/devstoreaccount1;")
    assert (emulator.public_host, emulator.path_prefix) == ("127.0.0.5:10000", "devstoreaccount1/")
    for bad in (f"AccountName=a;AccountKey={key};BlobEndpoint=http://127.0.0.1:10000/a",
                "AccountName=a;AccountKey=not base64!", f"AccountKey={key}", "garbage"):
        with pytest.raises(ValueError):
            parse_storage_connection_string(bad)


# --- the official SDK flow -------------------------------------------------------------------------
def test_official_sdk_upload_flow(upload_hub: HubProcess,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hub = upload_hub
    device_id = "up-sdk"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(hub.ca_path))  # storage trusts the hub's CA
    client = IoTHubDeviceClient.create_from_connection_string(
        hub.sdk_connection_string(hub.create_device(device_id)),
        server_verification_cert=hub.ca_pem)
    data = os.urandom(300_000)
    try:
        # As in Microsoft's sample (upload_to_blob.py), unchanged.
        info = client.get_storage_info_for_blob("reports/day 1.bin")
        sas_url = "https://{}/{}/{}{}".format(info["hostName"], info["containerName"],
                                              info["blobName"], info["sasToken"])
        with BlobClient.from_blob_url(sas_url) as blob_client:
            blob_client.upload_blob(data)
        client.notify_blob_upload_status(info["correlationId"], True, 201, "OK: day 1")
    finally:
        client.shutdown()
    assert hub.read_blob(f"{device_id}/reports/day 1.bin") == data
    note = hub.wait_upload_notifications(device_id, 1)[0]
    assert note["blobName"] == f"{device_id}/reports/day 1.bin"
    assert note["blobSizeInBytes"] == len(data)
    assert note["isSuccess"] is True and note["statusCode"] == 201
    assert note["statusDescription"] == "OK: day 1"
    assert note["correlationId"] == info["correlationId"]
    assert note["blobUri"] == sas_url.split("?")[0]

    out = subprocess.run(
        [sys.executable, "-m", "localhub", "--state", str(hub.state_dir), "upload",
         "notifications", "--device", device_id],
        capture_output=True, text=True, timeout=30, env={"PYTHONPATH": str(TOOLS), "PATH": ""})
    assert out.returncode == 0, out.stderr
    fields = out.stdout.strip().split("\t")
    assert fields[1:] == [device_id, f"{device_id}/reports/day 1.bin", str(len(data)), "success",
                          "201"]


# --- plain HTTP, block by block ----------------------------------------------------------------------
def test_raw_put_blocks_and_block_list(upload_hub: HubProcess, device: str) -> None:
    hub = upload_hub
    info = _start_upload(hub, device, "fw/image.bin")
    assert info["blobName"] == f"{device}/fw/image.bin"
    assert info["containerName"].endswith("/fileupload") and info["sasToken"].startswith("?")
    sas = parse_qs(info["sasToken"][1:])
    assert sas["sr"] == ["b"] and sas["sp"] == ["cw"] and {"sv", "se", "sig"} <= set(sas)
    host, port, path = _blob_target(info)
    assert host == hub.host  # Azurite listens beside the hub, on its address

    data = os.urandom(5 * 65536 + 1234)
    ids = []
    for n, start in enumerate(range(0, len(data), 65536)):
        block_id = base64.b64encode(f"block-{n:06d}".encode()).decode()  # same length each
        ids.append(block_id)
        status, _, body = _https(host, port, hub, "PUT",
                                 f"{path}&comp=block&blockid={quote(block_id, safe='')}",
                                 data[start:start + 65536], {"x-ms-version": "2021-08-06"})
        assert status == 201, body
    xml = ('<?xml version="1.0" encoding="utf-8"?><BlockList>'
           + "".join(f"<Latest>{i}</Latest>" for i in ids) + "</BlockList>").encode()
    status, _, body = _https(host, port, hub, "PUT", f"{path}&comp=blocklist", xml,
                             {"x-ms-version": "2021-08-06", "Content-Type": "application/xml"})
    assert status == 201, body
    status, _, _ = _device_post(hub, device, "/files/notifications",
                                {"correlationId": info["correlationId"], "isSuccess": True,
                                 "statusCode": 201, "statusDescription": "blocks"})
    assert status == 204
    assert hub.read_blob(f"{device}/fw/image.bin") == data
    note = hub.wait_upload_notifications(device, 1)[0]
    assert note["blobSizeInBytes"] == len(data) and note["isSuccess"] is True


def test_storage_refuses_expired_forged_and_read_sas(upload_hub: HubProcess, device: str) -> None:
    hub = upload_hub
    info = _start_upload(hub, device, "x.bin")
    host, port, path = _blob_target(info)
    blob_path, _, query = path.partition("?")
    put = {"x-ms-blob-type": "BlockBlob", "x-ms-version": "2021-08-06"}
    # The account key the hub signs with, and the hub's SAS code, with an expiry in the past.
    storage = hub.storage_info()
    account = parse_storage_connection_string(storage["connectionString"])
    expired = blob_sas(account.name, account.key, storage["container"], f"{device}/x.bin", "cw",
                       int(time.time()) - 60)
    assert _https(host, port, hub, "PUT", f"{blob_path}?{expired}", b"late", put)[0] == 403
    forged = query.replace("sp=cw", "sp=rcw")  # widen the permissions: signature breaks
    assert _https(host, port, hub, "PUT", f"{blob_path}?{forged}", b"forged", put)[0] == 403
    assert _https(host, port, hub, "PUT", path, b"on time", put)[0] == 201
    assert _https(host, port, hub, "GET", path)[0] == 403  # sp=cw: no reading back
    assert hub.read_blob(f"{device}/x.bin") == b"on time"


# --- limits and errors ---------------------------------------------------------------------------
def test_eleventh_upload_in_flight_is_refused(upload_hub: HubProcess, device: str) -> None:
    hub = upload_hub
    started = [_start_upload(hub, device, f"f{i}.bin") for i in range(10)]
    status, headers, body = _device_post(hub, device, "/files", {"blobName": "f10.bin"})
    assert status == 403
    assert headers["iothub-errorcode"] == "DeviceMaximumActiveFileUploadLimitExceeded"
    assert "403006" in body["Message"]
    # A completed upload (even a failed one) frees its slot.
    status, _, _ = _device_post(hub, device, "/files/notifications",
                                {"correlationId": started[0]["correlationId"], "isSuccess": False,
                                 "statusCode": 500, "statusDescription": "gave up"})
    assert status == 204
    _start_upload(hub, device, "f10.bin")
    note = hub.wait_upload_notifications(device, 1)[0]
    assert note["isSuccess"] is False and note["blobSizeInBytes"] is None


def test_unknown_or_reused_correlation_id(upload_hub: HubProcess, device: str) -> None:
    hub = upload_hub
    hub.create_device(device + "-other")
    for cid in ("never-issued", _start_upload(hub, device + "-other", "o.bin")["correlationId"]):
        status, headers, body = _device_post(hub, device, "/files/notifications",
                                             {"correlationId": cid, "isSuccess": True})
        assert status == 400, body
        assert headers["iothub-errorcode"] == "IotHubFormatError"
    cid = _start_upload(hub, device, "once.bin")["correlationId"]
    # Older SDKs put the correlation id in the path.
    assert _device_post(hub, device, f"/files/notifications/{cid}", {"isSuccess": True})[0] == 204
    assert _device_post(hub, device, "/files/notifications",
                        {"correlationId": cid, "isSuccess": True})[0] == 400
    for bad in ({"correlationId": cid}, {"correlationId": 5, "isSuccess": True},
                {"correlationId": cid, "isSuccess": "yes"}, [1, 2], b"{not json"):
        assert _device_post(hub, device, "/files/notifications", bad)[0] == 400


def test_device_endpoints_check_device_sas_and_input(upload_hub: HubProcess, device: str) -> None:
    hub = upload_hub
    hub.create_device(device + "-b")
    body = {"blobName": "a.bin"}
    policies = state.load_policies(hub.state_dir)

    def policy_token(name: str) -> str:
        return auth.generate_sas(hub.hostname, policies[name].key, int(time.time()) + 60, name)

    # ServiceConnect is not DeviceConnect; iothubowner has both, so it may upload as any device
    assert _device_post(hub, device, "/files", body, token=policy_token("iothubowner"))[0] == 200
    for token in ("", "SharedAccessSignature garbage", policy_token("service"),
                  _device_token(hub, device + "-b"), _device_token(hub, device, ttl=-10)):
        status, headers, _ = _device_post(hub, device, "/files", body, token=token)
        assert status == 401, token
        assert headers["iothub-errorcode"] == "IotHubUnauthorizedAccess"
    assert _device_post(hub, device, "/files", body, api_version=None)[0] == 400
    assert _device_post(hub, device, "/files", body, api_version="2019-10-01")[0] == 200
    for bad in ({"blobName": ""}, {"blobName": "../etc/passwd"}, {"blobName": "a\x00b"},
                {"blobName": "x" * 1025}, {}, b"\xff\xfe", b"[]"):
        status, _, _ = _device_post(hub, device, "/files", bad)
        assert status == 400, bad
    assert _device_post(hub, device, "/files", b"x" * 20000)[0] == 413
    assert _device_post(hub, "no-such-device", "/files", body, token="")[0] == 401
    assert hub.client.get_device(device)["deviceId"] == device  # the hub is still fine


# --- lifecycle -----------------------------------------------------------------------------------
def _azurite_pids(state_dir: Path) -> list[int]:
    """Azurite processes whose command line names this hub's state folder."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "azurite" in cmdline and str(state_dir) in cmdline:
            pids.append(int(entry.name))
    return pids


def _wait_gone(state_dir: Path, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (pids := _azurite_pids(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def test_restart_keeps_blobs_notifications_and_sas(hub: HubProcess) -> None:
    hub.create_device("keeper")
    info = _start_upload(hub, "keeper", "before.bin")
    host, port, path = _blob_target(info)
    put = {"x-ms-blob-type": "BlockBlob"}
    assert _https(host, port, hub, "PUT", path, b"first", put)[0] == 201
    assert _device_post(hub, "keeper", "/files/notifications",
                        {"correlationId": info["correlationId"], "isSuccess": True})[0] == 204
    later = _start_upload(hub, "keeper", "after.bin")
    assert _azurite_pids(hub.state_dir)

    hub.stop()
    assert _wait_gone(hub.state_dir) == []  # stopped with the hub
    hub.start()
    # The SAS issued before the restart still works (same port), and its upload completes.
    host2, port2, path2 = _blob_target(later)
    assert _https(host2, port2, hub, "PUT", path2, b"second", put)[0] == 201
    assert _device_post(hub, "keeper", "/files/notifications",
                        {"correlationId": later["correlationId"], "isSuccess": True})[0] == 204
    assert hub.read_blob("keeper/before.bin") == b"first"
    assert hub.read_blob("keeper/after.bin") == b"second"
    notes = hub.upload_notifications("keeper")
    assert [n["blobName"] for n in notes] == ["keeper/before.bin", "keeper/after.bin"]

    hub.kill()  # SIGKILL: Azurite must not outlive the hub
    assert _wait_gone(hub.state_dir) == []


def test_storage_connection_string_instead_of_azurite(upload_hub: HubProcess, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A second hub uploads into the first hub's Azurite through a storage connection string."""
    storage = upload_hub.storage_info()
    # The second hub verifies that storage with the first hub's CA (OpenSSL's SSL_CERT_FILE).
    monkeypatch.setenv("SSL_CERT_FILE", str(upload_hub.ca_path))
    with HubProcess(tmp_path / "hub2", serve_args=(
            "--storage-connection-string", storage["connectionString"],
            "--storage-container", "second-hub")) as hub2:
        hub2.create_device("remote")
        info = _start_upload(hub2, "remote", "r.bin")
        assert info["hostName"] == storage["hostName"]
        assert info["containerName"] == "devstoreaccount1/second-hub"
        host, port, path = _blob_target(info)
        status, _, _ = _https(host, port, upload_hub, "PUT", path, b"elsewhere",
                              {"x-ms-blob-type": "BlockBlob"})
        assert status == 201
        assert _device_post(hub2, "remote", "/files/notifications",
                            {"correlationId": info["correlationId"], "isSuccess": True})[0] == 204
        assert hub2.wait_upload_notifications("remote", 1)[0]["blobSizeInBytes"] == 9
        assert not (hub2.state_dir / "azurite").exists()  # no Azurite of its own
    blob = upload_hub.blob_service_client().get_blob_client("second-hub", "remote/r.bin")
    assert blob.download_blob().readall() == b"elsewhere"
