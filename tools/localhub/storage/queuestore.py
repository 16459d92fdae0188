"""SQLite persistence of the service-bound queues: C2D feedback and file upload notifications,
as IoT Hub keeps them until a back end completes them (the tables beside the hub's own, in the
same database file).

A message stays until it is completed, dead-lettered or expired; ``deliveries`` counts how often
it was handed out, so a message no receiver ever completes stops being handed out at last.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS servicebound (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    properties TEXT NOT NULL,
    enqueued REAL NOT NULL,
    expiry REAL NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS servicebound_queue ON servicebound(queue, seq);
"""


@dataclass
class QueuedMessage:
    seq: int
    queue: str
    body: bytes
    properties: dict[str, Any]  # content-type, message-id, ...
    enqueued: float
    expiry: float
    deliveries: int


class QueueStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    def add(self, queue: str, body: bytes, properties: dict[str, Any], enqueued: float,
            expiry: float) -> int:
        cur = self.db.execute(
            "INSERT INTO servicebound (queue, body, properties, enqueued, expiry) VALUES (?,?,?,?,?)",
            (queue, body, json.dumps(properties), enqueued, expiry))
        return int(cur.lastrowid or 0)

    def pending(self, queue: str, now: float, limit: int, max_deliveries: int) -> list[QueuedMessage]:
        """The oldest messages of ``queue`` still to hand out; the expired and the ones handed
        out ``max_deliveries`` times are removed on the way."""
        self.db.execute("DELETE FROM servicebound WHERE queue=? AND (expiry<=? OR deliveries>=?)",
                        (queue, now, max_deliveries))
        rows = self.db.execute("SELECT * FROM servicebound WHERE queue=? ORDER BY seq LIMIT ?",
                               (queue, limit))
        return [QueuedMessage(r["seq"], r["queue"], bytes(r["body"]), json.loads(r["properties"]),
                              r["enqueued"], r["expiry"], r["deliveries"]) for r in rows]

    def delivered(self, seq: int) -> None:
        self.db.execute("UPDATE servicebound SET deliveries=deliveries+1 WHERE seq=?", (seq,))

    def remove(self, seq: int) -> None:
        self.db.execute("DELETE FROM servicebound WHERE seq=?", (seq,))

    def count(self, queue: str, now: float) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM servicebound WHERE queue=? AND expiry>?",
                              (queue, now)).fetchone()
        return int(row[0])
