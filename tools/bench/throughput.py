"""Telemetry messages/s and upload MB/s on one local hub: this agent (lib/iothub on CPython, through
MicroPython-like socket/ssl adapters, as tests/lib runs it) against the official azure-iot-device
SDK doing the same work (QoS 1 messages one after another; one file through blob storage)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _agent_net() -> tuple[Any, Any]:
    # The adapters tests/lib uses: MicroPython's socket/ssl semantics over CPython's.
    for folder in (ROOT / "lib", ROOT / "tests" / "lib"):  # lib/ is device code, not installed
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    import lib_mpnet  # type: ignore[import-not-found]

    return lib_mpnet.SOCKET, lib_mpnet.SSL


def agent(hub: Any, device_id: str, messages: int, upload_path: Path) -> dict[str, float]:
    adapters = _agent_net()
    from iothub import net
    from iothub.client import IoTHubClient

    net.use(*adapters)
    try:
        client = IoTHubClient(hub.create_device(device_id), ca=hub.ca_der, port=hub.mqtt_port, keepalive=60,
                              max_inflight=1)
        client.connect()
        start = time.perf_counter()
        for i in range(messages):
            client.send_telemetry('{"n": %d}' % i)
            while client.stats()["inflight"] or client.stats()["queued"]:
                client.poll()
        telemetry_s = time.perf_counter() - start
        start = time.perf_counter()
        client.upload_file(str(upload_path), "bench.bin", chunk_size=4096)
        upload_s = time.perf_counter() - start
        client.disconnect()
    finally:
        net.use()
    size_mb = upload_path.stat().st_size / 1e6
    return {"telemetry_msgs_per_s": messages / telemetry_s, "upload_mb_per_s": size_mb / upload_s}


def sdk(hub: Any, device_id: str, messages: int, upload_path: Path) -> dict[str, float]:
    from azure.iot.device import IoTHubDeviceClient
    from azure.storage.blob import BlobClient

    os.environ["REQUESTS_CA_BUNDLE"] = str(hub.ca_path)  # the blob client trusts the hub's CA
    client = IoTHubDeviceClient.create_from_connection_string(
        hub.sdk_connection_string(hub.create_device(device_id)), server_verification_cert=hub.ca_pem)
    try:
        client.connect()
        start = time.perf_counter()
        for i in range(messages):
            client.send_message('{"n": %d}' % i)  # blocks until PUBACK, as the agent's loop above
        telemetry_s = time.perf_counter() - start
        data = upload_path.read_bytes()
        start = time.perf_counter()
        info = client.get_storage_info_for_blob("bench.bin")
        url = "https://{}/{}/{}{}".format(info["hostName"], info["containerName"], info["blobName"], info["sasToken"])
        # Same 4 KB blocks as the agent (the SDK's default would be one Put Blob).
        with BlobClient.from_blob_url(url, api_version="2025-11-05", max_block_size=4096,
                                      max_single_put_size=4096) as blob:
            blob.upload_blob(data)
        client.notify_blob_upload_status(info["correlationId"], True, 201, "OK")
        upload_s = time.perf_counter() - start
    finally:
        client.shutdown()
    size_mb = upload_path.stat().st_size / 1e6
    return {"telemetry_msgs_per_s": messages / telemetry_s, "upload_mb_per_s": size_mb / upload_s}


def compare(hub: Any, work: Path, messages: int = 200, upload_bytes: int = 1024 * 1024) -> dict[str, Any]:
    path = work / "bench-upload.bin"
    path.write_bytes(os.urandom(upload_bytes))
    mine = agent(hub, "tp-agent", messages, path)
    theirs = sdk(hub, "tp-sdk", messages, path)
    return {"messages": messages, "upload_bytes": upload_bytes, "block_bytes": 4096, "agent": mine, "sdk": theirs,
            "ratio_agent_over_sdk": {k: mine[k] / theirs[k] for k in mine}}
