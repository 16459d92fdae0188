"""SQLite persistence of the hub: devices (with keys and twin), the subscriptions of persistent
(clean session 0) MQTT sessions, pending C2D, recent telemetry.

One file, ``hub.sqlite3`` in the state folder, in WAL mode so the CLI can create devices while a
hub is serving. Every write commits at once: a hub killed with SIGKILL loses nothing acknowledged.
The hub runs all calls from its event loop thread; each statement is small (one row).
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    primary_key TEXT NOT NULL,
    secondary_key TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'enabled',
    status_reason TEXT,
    status_updated TEXT NOT NULL,
    generation_id TEXT NOT NULL,
    etag_counter INTEGER NOT NULL DEFAULT 1,
    twin TEXT NOT NULL,
    last_activity TEXT
);
CREATE TABLE IF NOT EXISTS modules (
    device_id TEXT NOT NULL,
    module_id TEXT NOT NULL,
    primary_key TEXT NOT NULL,
    secondary_key TEXT NOT NULL,
    managed_by TEXT,
    generation_id TEXT NOT NULL,
    etag_counter INTEGER NOT NULL DEFAULT 1,
    twin TEXT NOT NULL,
    PRIMARY KEY (device_id, module_id)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    qos INTEGER NOT NULL,
    PRIMARY KEY (device_id, kind)
);
CREATE TABLE IF NOT EXISTS c2d (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    properties TEXT NOT NULL,
    enqueued REAL NOT NULL,
    expiry REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS c2d_device ON c2d(device_id, seq);
CREATE INDEX IF NOT EXISTS c2d_expiry ON c2d(expiry);
CREATE TABLE IF NOT EXISTS telemetry (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    body BLOB NOT NULL,
    properties TEXT NOT NULL,
    system_properties TEXT NOT NULL,
    enqueued REAL NOT NULL,
    partition INTEGER NOT NULL DEFAULT 0,
    partition_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS consumer_groups (
    name TEXT PRIMARY KEY COLLATE NOCASE
);
CREATE TABLE IF NOT EXISTS partition_seqs (
    partition INTEGER PRIMARY KEY,
    last INTEGER NOT NULL
);
"""

# Telemetry is kept as a bounded window (the Event Hub endpoint's retention): the latest rows.
TELEMETRY_KEEP = 10_000
# IoT Hub's built-in endpoint has 4 device-to-cloud partitions unless made with more.
PARTITIONS = 4


def partition_of(device_id: str) -> int:
    """The partition a device's telemetry goes to: always the same one, so a device's messages
    keep their order (IoT Hub partitions by device id)."""
    return zlib.crc32(device_id.encode("utf-8")) % PARTITIONS


@dataclass
class DeviceRow:
    device_id: str
    primary_key: str
    secondary_key: str
    status: str
    status_reason: str | None
    status_updated: str
    generation_id: str
    etag_counter: int
    twin: dict[str, Any]
    last_activity: str | None


@dataclass
class ModuleRow:
    """A module identity of a device: its own keys and twin, no status of its own."""

    device_id: str
    module_id: str
    primary_key: str
    secondary_key: str
    managed_by: str | None
    generation_id: str
    etag_counter: int
    twin: dict[str, Any]

    @property
    def identity(self) -> str:
        return module_identity(self.device_id, self.module_id)


def module_identity(device_id: str, module_id: str) -> str:
    """How sessions, subscriptions and method calls name a module: ``{device}/{module}`` (an id
    never holds a '/', so this names one identity and no device)."""
    return f"{device_id}/{module_id}"


@dataclass
class C2DRow:
    seq: int
    device_id: str
    message_id: str
    body: bytes
    properties: dict[str, str]
    enqueued: float
    expiry: float


@dataclass
class TelemetryRow:
    seq: int  # the hub-wide order; the Event Hub endpoint's offset
    device_id: str
    body: bytes
    properties: dict[str, str | None]
    system_properties: dict[str, str | None]
    enqueued: float
    partition: int = 0
    partition_seq: int = 0  # the Event Hub sequence number: 0, 1, 2... within its partition


@dataclass
class PartitionInfo:
    first_seq: int  # partition_seq of the oldest row kept (-1: none)
    last_seq: int  # partition_seq of the newest (-1: none)
    last_offset: int  # its seq (-1: none)
    last_enqueued: float


class StoreError(Exception):
    pass


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(str(self.path), timeout=10, isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._migrate()
        self._telemetry_writes = 0

    def _migrate(self) -> None:
        # Telemetry from before the Event Hub endpoint had no partition: what is kept gets one.
        columns = {row["name"] for row in self.db.execute("PRAGMA table_info(telemetry)")}
        if "partition" not in columns:
            self.db.execute("ALTER TABLE telemetry ADD COLUMN partition INTEGER NOT NULL DEFAULT 0")
            self.db.execute("ALTER TABLE telemetry ADD COLUMN partition_seq INTEGER NOT NULL DEFAULT 0")
            self._partition_existing_telemetry()
        self.db.execute("CREATE INDEX IF NOT EXISTS telemetry_partition ON telemetry(partition, seq)")
        # State folders from before persistent sessions kept only a C2D flag per device.
        columns = {row["name"] for row in self.db.execute("PRAGMA table_info(devices)")}
        if "c2d_subscribed" in columns:
            self.db.execute("INSERT OR IGNORE INTO subscriptions SELECT device_id, 'c2d', 1 FROM devices"
                            " WHERE c2d_subscribed=1")
            self.db.execute("ALTER TABLE devices DROP COLUMN c2d_subscribed")

    def close(self) -> None:
        self.db.close()

    # --- devices ---------------------------------------------------------------------------
    @staticmethod
    def _device(row: sqlite3.Row) -> DeviceRow:
        return DeviceRow(
            device_id=row["device_id"], primary_key=row["primary_key"],
            secondary_key=row["secondary_key"], status=row["status"],
            status_reason=row["status_reason"], status_updated=row["status_updated"],
            generation_id=row["generation_id"], etag_counter=row["etag_counter"],
            twin=json.loads(row["twin"]), last_activity=row["last_activity"],
        )

    def insert_device(self, dev: DeviceRow) -> None:
        try:
            self.db.execute(
                "INSERT INTO devices (device_id, primary_key, secondary_key, status, status_reason,"
                " status_updated, generation_id, etag_counter, twin, last_activity) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (dev.device_id, dev.primary_key, dev.secondary_key, dev.status, dev.status_reason,
                 dev.status_updated, dev.generation_id, dev.etag_counter, json.dumps(dev.twin),
                 dev.last_activity),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"device {dev.device_id!r} already exists") from exc

    def save_device(self, dev: DeviceRow) -> None:
        self.db.execute(
            "UPDATE devices SET primary_key=?, secondary_key=?, status=?, status_reason=?,"
            " status_updated=?, etag_counter=?, twin=?, last_activity=?"
            " WHERE device_id=?",
            (dev.primary_key, dev.secondary_key, dev.status, dev.status_reason, dev.status_updated,
             dev.etag_counter, json.dumps(dev.twin), dev.last_activity, dev.device_id),
        )

    def get_device(self, device_id: str) -> DeviceRow | None:
        row = self.db.execute("SELECT * FROM devices WHERE device_id=?", (device_id,)).fetchone()
        return self._device(row) if row else None

    def list_devices(self, limit: int | None = None) -> list[DeviceRow]:
        sql = "SELECT * FROM devices ORDER BY device_id"
        rows = self.db.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        return [self._device(r) for r in rows]

    def delete_device(self, device_id: str) -> bool:
        cur = self.db.execute("DELETE FROM devices WHERE device_id=?", (device_id,))
        self.db.execute("DELETE FROM c2d WHERE device_id=?", (device_id,))
        self.db.execute("DELETE FROM subscriptions WHERE device_id=? OR device_id IN"
                        " (SELECT device_id || '/' || module_id FROM modules WHERE device_id=?)",
                        (device_id, device_id))
        self.db.execute("DELETE FROM modules WHERE device_id=?", (device_id,))
        return cur.rowcount > 0

    # --- modules ---------------------------------------------------------------------------
    @staticmethod
    def _module(row: sqlite3.Row) -> ModuleRow:
        return ModuleRow(
            device_id=row["device_id"], module_id=row["module_id"],
            primary_key=row["primary_key"], secondary_key=row["secondary_key"],
            managed_by=row["managed_by"], generation_id=row["generation_id"],
            etag_counter=row["etag_counter"], twin=json.loads(row["twin"]),
        )

    def insert_module(self, mod: ModuleRow) -> None:
        try:
            self.db.execute(
                "INSERT INTO modules (device_id, module_id, primary_key, secondary_key, managed_by,"
                " generation_id, etag_counter, twin) VALUES (?,?,?,?,?,?,?,?)",
                (mod.device_id, mod.module_id, mod.primary_key, mod.secondary_key, mod.managed_by,
                 mod.generation_id, mod.etag_counter, json.dumps(mod.twin)),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"module {mod.identity!r} already exists") from exc

    def save_module(self, mod: ModuleRow) -> None:
        self.db.execute(
            "UPDATE modules SET primary_key=?, secondary_key=?, managed_by=?, etag_counter=?, twin=?"
            " WHERE device_id=? AND module_id=?",
            (mod.primary_key, mod.secondary_key, mod.managed_by, mod.etag_counter,
             json.dumps(mod.twin), mod.device_id, mod.module_id),
        )

    def get_module(self, device_id: str, module_id: str) -> ModuleRow | None:
        row = self.db.execute("SELECT * FROM modules WHERE device_id=? AND module_id=?",
                              (device_id, module_id)).fetchone()
        return self._module(row) if row else None

    def list_modules(self, device_id: str) -> list[ModuleRow]:
        rows = self.db.execute("SELECT * FROM modules WHERE device_id=? ORDER BY module_id",
                               (device_id,))
        return [self._module(r) for r in rows]

    def delete_module(self, device_id: str, module_id: str) -> bool:
        cur = self.db.execute("DELETE FROM modules WHERE device_id=? AND module_id=?",
                              (device_id, module_id))
        self.db.execute("DELETE FROM subscriptions WHERE device_id=?",
                        (module_identity(device_id, module_id),))
        return cur.rowcount > 0

    # --- persistent sessions ---------------------------------------------------------------
    def subscriptions(self, device_id: str) -> dict[str, int]:
        """The subscriptions (kind -> granted QoS) a clean-session-0 device left behind."""
        rows = self.db.execute("SELECT kind, qos FROM subscriptions WHERE device_id=?", (device_id,))
        return {row["kind"]: row["qos"] for row in rows}

    def save_subscriptions(self, device_id: str, subscriptions: dict[str, int]) -> None:
        """Replace what is kept for ``device_id`` (empty: a clean session, nothing kept)."""
        if not subscriptions:  # every clean connect: one statement, no transaction
            self.db.execute("DELETE FROM subscriptions WHERE device_id=?", (device_id,))
            return
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM subscriptions WHERE device_id=?", (device_id,))
            self.db.executemany("INSERT INTO subscriptions VALUES (?,?,?)",
                                [(device_id, kind, qos) for kind, qos in subscriptions.items()])

    # --- cloud-to-device -------------------------------------------------------------------
    def add_c2d(self, device_id: str, message_id: str, body: bytes, properties: dict[str, str],
                enqueued: float, expiry: float) -> int:
        cur = self.db.execute(
            "INSERT INTO c2d (device_id, message_id, body, properties, enqueued, expiry)"
            " VALUES (?,?,?,?,?,?)",
            (device_id, message_id, body, json.dumps(properties), enqueued, expiry),
        )
        return int(cur.lastrowid or 0)

    def pending_c2d(self, device_id: str, now: float) -> list[C2DRow]:
        """Messages still to deliver, oldest first (expired ones are left to expire_c2d)."""
        rows = self.db.execute("SELECT * FROM c2d WHERE device_id=? AND expiry>? ORDER BY seq",
                               (device_id, now))
        return [self._c2d(r) for r in rows]

    @staticmethod
    def _c2d(r: sqlite3.Row) -> C2DRow:
        return C2DRow(r["seq"], r["device_id"], r["message_id"], bytes(r["body"]),
                      json.loads(r["properties"]), r["enqueued"], r["expiry"])

    def count_c2d(self, device_id: str, now: float) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM c2d WHERE device_id=? AND expiry>?",
                              (device_id, now)).fetchone()
        return int(row[0])

    def expire_c2d(self, now: float, device_id: str | None = None) -> list[C2DRow]:
        """Remove the messages whose time to live is over (of one device, or all) and return them."""
        if device_id is None:
            return self._take_c2d("expiry<=?", (now,))
        return self._take_c2d("device_id=? AND expiry<=?", (device_id, now))

    def _take_c2d(self, where: str, args: tuple[Any, ...]) -> list[C2DRow]:
        """Remove the messages ``where`` selects, in one transaction, and return them."""
        with self.db:
            self.db.execute("BEGIN")
            rows = [self._c2d(r) for r in self.db.execute(f"SELECT * FROM c2d WHERE {where}", args)]
            if rows:
                self.db.execute(f"DELETE FROM c2d WHERE {where}", args)
        return rows

    def complete_c2d(self, seq: int) -> None:
        self.db.execute("DELETE FROM c2d WHERE seq=?", (seq,))

    def purge_c2d(self, device_id: str) -> list[C2DRow]:
        """Remove every message queued for ``device_id`` and return them."""
        return self._take_c2d("device_id=?", (device_id,))

    # --- telemetry -------------------------------------------------------------------------
    def _partition_existing_telemetry(self) -> None:
        counters: dict[int, int] = {}
        rows = self.db.execute("SELECT seq, device_id FROM telemetry ORDER BY seq").fetchall()
        for row in rows:
            part = partition_of(row["device_id"])
            counters[part] = counters.get(part, -1) + 1
            self.db.execute("UPDATE telemetry SET partition=?, partition_seq=? WHERE seq=?",
                            (part, counters[part], row["seq"]))
        self.db.executemany("INSERT OR REPLACE INTO partition_seqs VALUES (?,?)", counters.items())

    def add_telemetry(self, device_id: str, body: bytes, properties: dict[str, str | None],
                      system_properties: dict[str, str | None], enqueued: float) -> int:
        part = partition_of(device_id)
        # A counter of its own: the retention window must not make a partition count again.
        number = self.db.execute(
            "INSERT INTO partition_seqs VALUES (?, 0) ON CONFLICT(partition) DO UPDATE"
            " SET last=last+1 RETURNING last", (part,)).fetchone()[0]
        cur = self.db.execute(
            "INSERT INTO telemetry (device_id, body, properties, system_properties, enqueued,"
            " partition, partition_seq) VALUES (?,?,?,?,?,?,?)",
            (device_id, body, json.dumps(properties), json.dumps(system_properties), enqueued,
             part, number),
        )
        seq = int(cur.lastrowid or 0)
        self._telemetry_writes += 1
        if self._telemetry_writes % 500 == 0:
            self.db.execute("DELETE FROM telemetry WHERE seq<=?", (seq - TELEMETRY_KEEP,))
        return seq

    def telemetry_after(self, after: int, device_id: str | None, limit: int) -> list[TelemetryRow]:
        if device_id is None:
            rows = self.db.execute(
                "SELECT * FROM telemetry WHERE seq>? ORDER BY seq LIMIT ?", (after, limit))
        else:
            rows = self.db.execute(
                "SELECT * FROM telemetry WHERE seq>? AND device_id=? ORDER BY seq LIMIT ?",
                (after, device_id, limit))
        return [self._telemetry(r) for r in rows]

    @staticmethod
    def _telemetry(r: sqlite3.Row) -> TelemetryRow:
        return TelemetryRow(r["seq"], r["device_id"], bytes(r["body"]), json.loads(r["properties"]),
                            json.loads(r["system_properties"]), r["enqueued"], r["partition"],
                            r["partition_seq"])

    def partition_after(self, partition: int, after_seq: int, limit: int) -> list[TelemetryRow]:
        """Rows of one partition with seq (offset) > ``after_seq``, oldest first."""
        rows = self.db.execute("SELECT * FROM telemetry WHERE partition=? AND seq>? ORDER BY seq"
                               " LIMIT ?", (partition, after_seq, limit))
        return [self._telemetry(r) for r in rows]

    def consumer_groups(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM consumer_groups ORDER BY name")]

    def add_consumer_group(self, name: str) -> bool:
        cur = self.db.execute("INSERT OR IGNORE INTO consumer_groups VALUES (?)", (name,))
        return cur.rowcount > 0

    def delete_consumer_group(self, name: str) -> bool:
        return self.db.execute("DELETE FROM consumer_groups WHERE name=?", (name,)).rowcount > 0

    def offset_before_sequence(self, partition: int, number: int) -> int:
        """The offset a reader starts after to get the event numbered ``number`` on first."""
        row = self.db.execute("SELECT seq FROM telemetry WHERE partition=? AND partition_seq>=?"
                              " ORDER BY seq LIMIT 1", (partition, number)).fetchone()
        return int(row[0]) - 1 if row else max(self.partition_info(partition).last_offset, 0)

    def offset_before_time(self, partition: int, enqueued: float, inclusive: bool) -> int:
        """The offset a reader starts after to get the first event enqueued after a time."""
        op = ">=" if inclusive else ">"
        row = self.db.execute(f"SELECT seq FROM telemetry WHERE partition=? AND enqueued{op}?"
                              " ORDER BY seq LIMIT 1", (partition, enqueued)).fetchone()
        return int(row[0]) - 1 if row else max(self.partition_info(partition).last_offset, 0)

    def partition_info(self, partition: int) -> PartitionInfo:
        first = self.db.execute("SELECT MIN(partition_seq) FROM telemetry WHERE partition=?",
                                (partition,)).fetchone()[0]
        last = self.db.execute("SELECT partition_seq, seq, enqueued FROM telemetry WHERE partition=?"
                               " ORDER BY seq DESC LIMIT 1", (partition,)).fetchone()
        if last is None:
            return PartitionInfo(-1, -1, -1, 0.0)
        return PartitionInfo(int(first), int(last[0]), int(last[1]), float(last[2]))

    def last_telemetry_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM telemetry").fetchone()
        return int(row[0] or 0)
