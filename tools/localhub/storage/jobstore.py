"""SQLite persistence of jobs v2: one row per job, one row per (job, device) result.

The tables live in the hub's own database file (``hub.sqlite3``) and share the store's
connection, so a job and the twins it changed are as durable as each other: every write commits
at once (WAL), a SIGKILL loses nothing that was acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    query_condition TEXT NOT NULL,
    created REAL NOT NULL,
    start REAL NOT NULL,
    run_started REAL,
    ended REAL,
    max_execution INTEGER NOT NULL,
    spec TEXT NOT NULL,
    failure_reason TEXT,
    status_message TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS job_devices (
    job_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    ended REAL,
    outcome TEXT,
    error TEXT,
    PRIMARY KEY (job_id, device_id)
);
CREATE INDEX IF NOT EXISTS job_devices_device ON job_devices(device_id);
"""


@dataclass
class JobRow:
    job_id: str
    type: str  # scheduleDeviceMethod | scheduleUpdateTwin
    status: str  # queued scheduled running completed failed cancelled
    query_condition: str
    created: float
    start: float
    run_started: float | None
    ended: float | None
    max_execution: int
    spec: dict[str, Any]  # {"cloudToDeviceMethod": {...}} or {"updateTwin": {...}}
    failure_reason: str | None = None
    status_message: str | None = None


@dataclass
class DeviceJobRow:
    job_id: str
    device_id: str
    status: str  # pending running completed failed cancelled
    created: float
    updated: float
    started: float | None = None
    ended: float | None = None
    outcome: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class JobStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    # --- jobs ------------------------------------------------------------------------------
    @staticmethod
    def _job(row: sqlite3.Row) -> JobRow:
        return JobRow(row["job_id"], row["type"], row["status"], row["query_condition"],
                      row["created"], row["start"], row["run_started"], row["ended"],
                      row["max_execution"], json.loads(row["spec"]), row["failure_reason"],
                      row["status_message"])

    def insert_job(self, job: JobRow) -> bool:
        """Insert; False when a job with that id exists already."""
        try:
            self.db.execute(
                "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (job.job_id, job.type, job.status, job.query_condition, job.created, job.start,
                 job.run_started, job.ended, job.max_execution, json.dumps(job.spec),
                 job.failure_reason, job.status_message))
        except sqlite3.IntegrityError:
            return False
        return True

    def save_job(self, job: JobRow) -> None:
        self.db.execute(
            "UPDATE jobs SET status=?, run_started=?, ended=?, failure_reason=?, status_message=?"
            " WHERE job_id=?",
            (job.status, job.run_started, job.ended, job.failure_reason, job.status_message,
             job.job_id))

    def get_job(self, job_id: str) -> JobRow | None:
        row = self.db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def list_jobs(self, job_type: str | None = None, status: str | None = None) -> list[JobRow]:
        sql, args = "SELECT * FROM jobs WHERE 1=1", []
        if job_type:
            sql += " AND type=?"
            args.append(job_type)
        if status:
            sql += " AND status=?"
            args.append(status)
        return [self._job(r) for r in self.db.execute(sql + " ORDER BY created, job_id", args)]

    def active_jobs(self) -> list[JobRow]:
        rows = self.db.execute("SELECT * FROM jobs WHERE status IN ('queued','scheduled','running')"
                               " ORDER BY start, job_id")
        return [self._job(r) for r in rows]

    # --- per-device results ----------------------------------------------------------------
    @staticmethod
    def _device(row: sqlite3.Row) -> DeviceJobRow:
        return DeviceJobRow(row["job_id"], row["device_id"], row["status"], row["created"],
                            row["updated"], row["started"], row["ended"],
                            json.loads(row["outcome"]) if row["outcome"] else None,
                            json.loads(row["error"]) if row["error"] else None)

    def add_devices(self, job_id: str, device_ids: Iterable[str], now: float) -> None:
        """Record the targets of a job as pending, in one transaction (fast for thousands)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR IGNORE INTO job_devices (job_id, device_id, status, created, updated)"
                " VALUES (?,?,'pending',?,?)", ((job_id, d, now, now) for d in device_ids))

    def finish_device(self, row: DeviceJobRow) -> None:
        self.db.execute(
            "UPDATE job_devices SET status=?, updated=?, started=?, ended=?, outcome=?, error=?"
            " WHERE job_id=? AND device_id=?",
            (row.status, row.updated, row.started, row.ended,
             json.dumps(row.outcome) if row.outcome is not None else None,
             json.dumps(row.error) if row.error is not None else None, row.job_id, row.device_id))

    def finish_remaining(self, job_id: str, status: str, error: dict[str, Any], now: float) -> int:
        """Close every device of the job still pending or running; return how many."""
        cur = self.db.execute(
            "UPDATE job_devices SET status=?, updated=?, ended=?, error=? WHERE job_id=? AND"
            " status IN ('pending','running')", (status, now, now, json.dumps(error), job_id))
        return cur.rowcount

    def devices_of(self, job_id: str, statuses: tuple[str, ...] | None = None
                   ) -> list[DeviceJobRow]:
        sql, args = "SELECT * FROM job_devices WHERE job_id=?", [job_id]
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        return [self._device(r) for r in self.db.execute(sql + " ORDER BY device_id", args)]

    def all_device_jobs(self) -> list[DeviceJobRow]:
        rows = self.db.execute("SELECT * FROM job_devices ORDER BY job_id, device_id")
        return [self._device(r) for r in rows]

    def counts(self, job_id: str) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM job_devices WHERE job_id=?"
                               " GROUP BY status", (job_id,))
        return {r[0]: int(r[1]) for r in rows}
