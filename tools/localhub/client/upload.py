"""Client side of the hub's file-upload routes, over :class:`localhub.client.hub_client.HubClient`.

Used by the CLI (``localhub upload ...``) and :class:`localhub.testing.HubProcess`. Reading blobs
back (:func:`blob_service_client`) needs ``azure-storage-blob`` (a test extra), imported lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .longpoll import collect
from .hub_client import HubClient

# What azure-storage-blob 12.31 would send is newer than Azurite 3.35 knows; the hub starts
# Azurite with --skipApiVersionCheck, but a client may also talk to an Azurite run by hand.
AZURITE_API_VERSION = "2025-11-05"


def read_notifications(client: HubClient, after: int = 0, device_id: str | None = None,
                       wait: float = 0, limit: int = 500) -> tuple[list[dict[str, Any]], int]:
    """One long poll: (notifications with seq > ``after``, the ``after`` to pass next)."""
    params: dict[str, Any] = {"after": after, "wait": wait, "limit": limit}
    if device_id:
        params["deviceId"] = device_id
    data = client.request("GET", "/localhub/uploads/notifications", params=params,
                          timeout=wait + 30)[2]
    return data["notifications"], data["last"]


def all_notifications(client: HubClient, device_id: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        rows, after = read_notifications(client, after, device_id, 0, 5000)
        if not rows:
            return out
        out.extend(rows)


def wait_notifications(client: HubClient, device_id: str | None, count: int,
                       timeout: float = 10.0) -> list[dict[str, Any]]:
    """Block (long poll, no sleeping) until ``count`` notifications exist; return them all."""
    return collect(lambda after, wait: read_notifications(client, after, device_id, wait), count, timeout,
                   "upload notifications")


def storage_info(client: HubClient) -> dict[str, Any]:
    """``{connectionString, accountName, blobEndpoint, container, hostName, containerName}``."""
    return client.request("GET", "/localhub/storage")[2]


def blob_service_client(client: HubClient, ca_path: Path | str | None) -> Any:
    """An ``azure.storage.blob.BlobServiceClient`` on the hub's storage (account key access)."""
    from azure.storage.blob import BlobServiceClient

    info = storage_info(client)
    kwargs: dict[str, Any] = {}
    if ca_path is not None:
        kwargs["connection_verify"] = str(ca_path)
    if info["accountName"] == "devstoreaccount1":
        kwargs["api_version"] = AZURITE_API_VERSION
    return BlobServiceClient.from_connection_string(info["connectionString"], **kwargs)


def read_blob(client: HubClient, ca_path: Path | str | None, blob_name: str) -> bytes:
    """The bytes of ``blob_name`` (``{deviceId}/{name}``) in the hub's upload container."""
    service = blob_service_client(client, ca_path)
    container = storage_info(client)["container"]
    return service.get_blob_client(container, blob_name).download_blob().readall()
