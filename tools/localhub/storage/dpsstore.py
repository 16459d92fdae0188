"""SQLite persistence of the local Device Provisioning Service: its ID scope, individual
enrollments, enrollment groups and registration records (tables beside the hub's own)."""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS dps_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dps_enrollments (
    registration_id TEXT PRIMARY KEY,
    primary_key TEXT NOT NULL,
    secondary_key TEXT NOT NULL,
    device_id TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dps_groups (
    group_id TEXT PRIMARY KEY,
    primary_key TEXT NOT NULL,
    secondary_key TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dps_registrations (
    registration_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    enrollment TEXT NOT NULL,
    assigned_hub TEXT NOT NULL,
    substatus TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    etag_counter INTEGER NOT NULL DEFAULT 1
);
"""


@dataclass
class Enrollment:
    """An individual enrollment (``group`` None) or an enrollment group's keys."""

    name: str  # the registration id, or the group id
    primary_key: str
    secondary_key: str
    device_id: str | None
    created: float
    group: bool


@dataclass
class Registration:
    registration_id: str
    device_id: str
    enrollment: str  # "individual" or "group:{group id}"
    assigned_hub: str
    substatus: str
    created: float
    updated: float
    etag_counter: int


class DpsStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    def id_scope(self) -> str:
        """The service's ID scope, made once (``0ne`` and 8 hex digits, as DPS's look)."""
        row = self.db.execute("SELECT value FROM dps_settings WHERE name='id_scope'").fetchone()
        if row is not None:
            return str(row[0])
        scope = "0ne" + secrets.token_hex(4).upper()
        self.db.execute("INSERT OR IGNORE INTO dps_settings VALUES ('id_scope', ?)", (scope,))
        return str(self.db.execute("SELECT value FROM dps_settings WHERE name='id_scope'").fetchone()[0])

    # --- enrollments -------------------------------------------------------------------------
    def add_enrollment(self, e: Enrollment) -> bool:
        table, key = ("dps_groups", "group_id") if e.group else ("dps_enrollments", "registration_id")
        columns = f"({key}, primary_key, secondary_key, created)" if e.group else \
            f"({key}, primary_key, secondary_key, device_id, created)"
        values = (e.name, e.primary_key, e.secondary_key, e.created) if e.group else \
            (e.name, e.primary_key, e.secondary_key, e.device_id, e.created)
        marks = ",".join("?" * len(values))
        try:
            self.db.execute(f"INSERT INTO {table} {columns} VALUES ({marks})", values)
        except sqlite3.IntegrityError:
            return False
        return True

    def enrollment(self, registration_id: str) -> Enrollment | None:
        row = self.db.execute("SELECT * FROM dps_enrollments WHERE registration_id=?",
                              (registration_id,)).fetchone()
        return None if row is None else Enrollment(row["registration_id"], row["primary_key"],
                                                   row["secondary_key"], row["device_id"],
                                                   row["created"], False)

    def enrollments(self) -> list[Enrollment]:
        individual = [Enrollment(r["registration_id"], r["primary_key"], r["secondary_key"],
                                 r["device_id"], r["created"], False)
                      for r in self.db.execute("SELECT * FROM dps_enrollments ORDER BY registration_id")]
        return individual + self.groups()

    def group(self, group_id: str) -> Enrollment | None:
        row = self.db.execute("SELECT * FROM dps_groups WHERE group_id=?", (group_id,)).fetchone()
        return None if row is None else Enrollment(row["group_id"], row["primary_key"],
                                                   row["secondary_key"], None, row["created"], True)

    def groups(self) -> list[Enrollment]:
        return [Enrollment(r["group_id"], r["primary_key"], r["secondary_key"], None, r["created"], True)
                for r in self.db.execute("SELECT * FROM dps_groups ORDER BY group_id")]

    def delete_enrollment(self, name: str, group: bool) -> bool:
        table, key = ("dps_groups", "group_id") if group else ("dps_enrollments", "registration_id")
        return self.db.execute(f"DELETE FROM {table} WHERE {key}=?", (name,)).rowcount > 0

    # --- registrations -----------------------------------------------------------------------
    def registration(self, registration_id: str) -> Registration | None:
        row = self.db.execute("SELECT * FROM dps_registrations WHERE registration_id=?",
                              (registration_id,)).fetchone()
        return None if row is None else Registration(*tuple(row))

    def registrations(self) -> list[Registration]:
        return [Registration(*tuple(r)) for r in
                self.db.execute("SELECT * FROM dps_registrations ORDER BY registration_id")]

    def save_registration(self, r: Registration) -> None:
        self.db.execute(
            "INSERT INTO dps_registrations VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(registration_id) DO UPDATE"
            " SET device_id=excluded.device_id, enrollment=excluded.enrollment,"
            " assigned_hub=excluded.assigned_hub, substatus=excluded.substatus,"
            " updated=excluded.updated, etag_counter=excluded.etag_counter",
            (r.registration_id, r.device_id, r.enrollment, r.assigned_hub, r.substatus, r.created,
             r.updated, r.etag_counter))
