"""Device file upload, the IoT Hub half: SAS URIs for blobs, in-flight limits, notifications.

Flow (``/devices/{id}/files``, see endpoints/upload_routes.py for the HTTPS side):

1. ``create(device, blobName)`` checks the name, refuses an 11th upload in flight for the device
   (403, ``DeviceMaximumActiveFileUploadLimitExceeded``, IoT Hub error 403006), and returns
   ``{correlationId, hostName, containerName, blobName, sasToken}``; the blob is
   ``{deviceId}/{blobName}`` in the hub's container, the SAS (``sp=cw``) expires after the TTL
   (default 1 h, as IoT Hub's default "SAS TTL").
2. The device uploads to ``https://{hostName}/{containerName}/{blobName}{sasToken}``.
3. ``complete(device, correlationId, isSuccess, ...)`` ends the upload (its slot is freed) and
   records a notification with the blob's size read back from storage. An unknown correlation
   id (never issued, already completed, expired, or another device's) is refused with 400
   ``IotHubFormatError`` (400006), as IoT Hub answers it.

An upload is "in flight" from (1) until (3) or until its SAS expires. Its correlation id stays
good for a notification :data:`NOTIFY_GRACE` seconds longer: a device whose upload failed because
the SAS expired must still be able to report that failure (storage said 403), or the back end never
learns of it. Uploads and notifications
are kept in the hub's SQLite file (tables created here, on the store's connection), so a hub
restart loses neither. Real IoT Hub delivers notifications over AMQP
(``/messages/servicebound/fileuploadnotifications``); the local hub keeps the latest
:data:`NOTIFICATIONS_KEEP` and serves them with a long poll (``GET /localhub/uploads/notifications``).

``blobName`` in the answer is percent-encoded (``/`` kept) so that the URL formula above holds for
any name; for ordinary names (letters, digits, ``-._~/``) it is the name itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

from ..protocol.errors import HubError, bad_request
from ..protocol.twin import iso_now
from ..storage.blob import Storage, StorageError
from .longpoll import rows_or_wait

log = logging.getLogger("localhub.uploads")

MAX_IN_FLIGHT = 10  # IoT Hub: "10 SAS URIs/device can be out at one time"
DEFAULT_SAS_TTL = 3600
MAX_BLOB_NAME = 1024  # Azure: a blob name is at most 1,024 characters
NOTIFICATIONS_KEEP = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    correlation_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    blob_name TEXT NOT NULL,
    created REAL NOT NULL,
    expiry REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_device ON uploads(device_id);
CREATE TABLE IF NOT EXISTS upload_notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    blob_name TEXT NOT NULL,
    blob_uri TEXT NOT NULL,
    size INTEGER,
    last_updated REAL,
    is_success INTEGER NOT NULL,
    status_code INTEGER,
    status_description TEXT,
    enqueued REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS upload_notifications_device ON upload_notifications(device_id, seq);
"""


def check_blob_name(name: Any) -> str:
    """The blob name a device asked for, or 400: a non-empty relative path, no control characters,
    no ``.``/``..`` or empty segment, not ending in ``/`` or ``.`` (Azure rules)."""
    if not isinstance(name, str) or not name:
        raise bad_request("blobName must be a non-empty string")
    if len(name) > MAX_BLOB_NAME:
        raise bad_request(f"blobName longer than {MAX_BLOB_NAME} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in name):
        raise bad_request("blobName contains control characters")
    if "\\" in name:
        raise bad_request("blobName must use '/' as separator")
    if any(seg in ("", ".", "..") for seg in name.split("/")):
        raise bad_request("blobName must be a relative path without '.', '..' or empty segments")
    if name.endswith("."):
        raise bad_request("blobName must not end with '.'")
    return name


@dataclass
class Notification:
    seq: int
    device_id: str
    correlation_id: str
    blob_name: str
    blob_uri: str
    size: int | None
    last_updated: float | None
    is_success: bool
    status_code: int | None
    status_description: str | None
    enqueued: float

    def iot_hub_json(self) -> dict[str, Any]:
        """The record IoT Hub puts in its file notification queue (AMQP): these six fields."""
        return {
            "deviceId": self.device_id, "blobUri": self.blob_uri, "blobName": self.blob_name,
            "lastUpdatedTime": iso_now(self.last_updated) if self.last_updated else None,
            "blobSizeInBytes": self.size, "enqueuedTimeUtc": iso_now(self.enqueued),
        }

    def to_json(self) -> dict[str, Any]:
        """IoT Hub's notification fields (camelCase) plus the device's report and a ``seq``."""
        return {
            "seq": self.seq, "deviceId": self.device_id, "blobUri": self.blob_uri,
            "blobName": self.blob_name,
            "lastUpdatedTime": iso_now(self.last_updated) if self.last_updated else None,
            "blobSizeInBytes": self.size, "enqueuedTimeUtc": iso_now(self.enqueued),
            "correlationId": self.correlation_id, "isSuccess": self.is_success,
            "statusCode": self.status_code, "statusDescription": self.status_description,
        }


# How long after its SAS expired an upload may still be notified (its slot is already free).
NOTIFY_GRACE = 3600.0


class UploadStore:
    """The two upload tables, on the hub's SQLite connection (one statement per call)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)
        self._writes = 0

    def in_flight(self, device_id: str, now: float) -> int:
        self.db.execute("DELETE FROM uploads WHERE device_id=? AND expiry<=?", (device_id, now - NOTIFY_GRACE))
        row = self.db.execute("SELECT COUNT(*) FROM uploads WHERE device_id=? AND expiry>?", (device_id, now))
        return int(row.fetchone()[0])

    def add(self, correlation_id: str, device_id: str, blob_name: str, now: float,
            expiry: float) -> None:
        self.db.execute("INSERT INTO uploads VALUES (?,?,?,?,?)",
                        (correlation_id, device_id, blob_name, now, expiry))

    def take(self, correlation_id: str, device_id: str, now: float) -> str | None:
        """Remove a live upload of this device; return its blob name (None: no such upload)."""
        row = self.db.execute(
            "SELECT blob_name FROM uploads WHERE correlation_id=? AND device_id=? AND expiry>?",
            (correlation_id, device_id, now - NOTIFY_GRACE)).fetchone()
        if row is None:
            return None
        self.db.execute("DELETE FROM uploads WHERE correlation_id=?", (correlation_id,))
        return str(row[0])

    def add_notification(self, n: Notification) -> int:
        cur = self.db.execute(
            "INSERT INTO upload_notifications (device_id, correlation_id, blob_name, blob_uri,"
            " size, last_updated, is_success, status_code, status_description, enqueued)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (n.device_id, n.correlation_id, n.blob_name, n.blob_uri, n.size, n.last_updated,
             int(n.is_success), n.status_code, n.status_description, n.enqueued))
        seq = int(cur.lastrowid or 0)
        self._writes += 1
        if self._writes % 100 == 0:
            self.db.execute("DELETE FROM upload_notifications WHERE seq<=?",
                            (seq - NOTIFICATIONS_KEEP,))
        return seq

    def notifications_after(self, after: int, device_id: str | None,
                            limit: int) -> list[Notification]:
        if device_id is None:
            rows = self.db.execute("SELECT * FROM upload_notifications WHERE seq>? ORDER BY seq"
                                   " LIMIT ?", (after, limit))
        else:
            rows = self.db.execute("SELECT * FROM upload_notifications WHERE seq>? AND device_id=?"
                                   " ORDER BY seq LIMIT ?", (after, device_id, limit))
        return [Notification(r["seq"], r["device_id"], r["correlation_id"], r["blob_name"],
                             r["blob_uri"], r["size"], r["last_updated"], bool(r["is_success"]),
                             r["status_code"], r["status_description"], r["enqueued"])
                for r in rows]

    def last_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM upload_notifications").fetchone()
        return int(row[0] or 0)


def _storage_failed(exc: StorageError) -> HubError:
    return HubError(500, "ServerError", f"blob storage unavailable: {exc}")


class UploadService:
    def __init__(self, db: sqlite3.Connection, storage: Storage, clock: Callable[[], float],
                 sas_ttl: int = DEFAULT_SAS_TTL, max_in_flight: int = MAX_IN_FLIGHT,
                 on_uploaded: Callable[[Notification], None] | None = None) -> None:
        if sas_ttl <= 0:
            raise ValueError("the SAS TTL must be positive")
        self.store = UploadStore(db)
        self.storage = storage
        self.clock = clock
        self.sas_ttl = sas_ttl
        self.max_in_flight = max_in_flight
        self.on_uploaded = on_uploaded  # each successful upload's notification (the AMQP queue)
        self._new = asyncio.Event()

    async def create(self, device_id: str, requested_name: Any) -> dict[str, Any]:
        """Start an upload: what ``POST /devices/{id}/files`` answers."""
        name = check_blob_name(requested_name)
        blob = f"{device_id}/{name}"
        if len(blob) > MAX_BLOB_NAME:
            raise bad_request(f"{{deviceId}}/{{blobName}} longer than {MAX_BLOB_NAME} characters")
        try:
            account = await self.storage.ensure()
        except StorageError as exc:
            raise _storage_failed(exc) from exc
        # Count and insert with no await in between: concurrent requests cannot both take slot 10.
        now = self.clock()
        if self.store.in_flight(device_id, now) >= self.max_in_flight:
            raise HubError(403, "DeviceMaximumActiveFileUploadLimitExceeded",
                           f"403006: Number of active file upload requests cannot exceed "
                           f"{self.max_in_flight} for device {device_id!r}")
        expiry = int(now) + self.sas_ttl
        correlation_id = secrets.token_urlsafe(32)
        self.store.add(correlation_id, device_id, blob, now, expiry)
        return {
            "correlationId": correlation_id,
            "hostName": account.public_host,
            "containerName": account.path_prefix + self.storage.container,
            "blobName": quote(blob, safe="/"),
            "sasToken": "?" + self.storage.device_sas(account, blob, expiry),
        }

    async def complete(self, device_id: str, body: dict[str, Any],
                       correlation_id: str | None = None) -> Notification:
        """``POST /devices/{id}/files/notifications``: end an upload, record the notification."""
        cid = correlation_id if correlation_id is not None else body.get("correlationId")
        if not isinstance(cid, str) or not cid:
            raise bad_request("correlationId must be a non-empty string", "ArgumentNull")
        is_success = body.get("isSuccess")
        if not isinstance(is_success, bool):
            raise bad_request("isSuccess must be true or false")
        status_code = body.get("statusCode")
        if status_code is not None and (isinstance(status_code, bool)
                                        or not isinstance(status_code, int)):
            raise bad_request("statusCode must be an integer")
        description = body.get("statusDescription")
        if description is not None and not isinstance(description, str):
            raise bad_request("statusDescription must be a string")
        blob = self.store.take(cid, device_id, self.clock())
        if blob is None:
            raise HubError(400, "IotHubFormatError",
                           "400006: unknown, expired or already completed correlationId")
        size = last_updated = None
        try:
            account = await self.storage.ensure()
            props = await self.storage.blob_properties(blob)
        except StorageError as exc:
            raise _storage_failed(exc) from exc
        if props is not None:
            size, last_updated = props
        note = Notification(0, device_id, cid, blob, account.public_url(self.storage.container, blob),
                            size, last_updated, is_success, status_code,
                            description[:1024] if description else description, self.clock())
        note.seq = self.store.add_notification(note)
        if is_success and self.on_uploaded is not None:
            self.on_uploaded(note)  # IoT Hub notifies back ends of successful uploads only
        self._new.set()
        self._new = asyncio.Event()
        return note

    async def read(self, after: int, device_id: str | None, limit: int,
                   wait: float) -> tuple[list[Notification], int]:
        """Notifications with seq > ``after`` (negative: from now on), waiting up to ``wait``
        seconds for the first one; also the ``after`` a reader passes next time."""
        if after < 0:
            after = self.store.last_seq()  # "from now on"
        rows = await rows_or_wait(lambda: self.store.notifications_after(after, device_id, limit),
                                  lambda: self._new, wait)
        return rows, (rows[-1].seq if rows else after)

    async def storage_info(self) -> dict[str, Any]:
        """For the owner (CLI, tests): where uploads land and how to read them."""
        try:
            account = await self.storage.ensure()
        except StorageError as exc:
            raise _storage_failed(exc) from exc
        return {"connectionString": account.connection_string(), "accountName": account.name,
                "blobEndpoint": account.endpoint, "container": self.storage.container,
                "hostName": account.public_host,
                "containerName": account.path_prefix + self.storage.container}

    async def resume(self) -> None:
        """At hub start: bring storage back if it was in use (failures are logged, not fatal)."""
        if self.storage.used_before():
            try:
                await self.storage.ensure()
            except StorageError as exc:
                log.warning("blob storage not restarted: %s", exc)

    async def close(self) -> None:
        await self.storage.close()
