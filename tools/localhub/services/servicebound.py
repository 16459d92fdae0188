"""The service-bound queues IoT Hub fills for back ends: C2D delivery feedback
(``/messages/serviceBound/feedback``) and file upload notifications
(``/messages/serviceBound/filenotifications``).

Receive semantics are those of a queue with locks, as IoT Hub gives them: a message handed to a
receiver is locked to it until the receiver completes it (gone), abandons it (handed out again)
or rejects it (dead-lettered: gone); a receiver that goes away abandons what it held. Locks live
in memory: after a hub restart every message not completed is handed out again. A message
expires after its time to live (1 hour, IoT Hub's default for both queues) and is dead-lettered
after ``MAX_DELIVERIES`` hand-outs (IoT Hub's default maxDeliveryCount of both).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable

from ..protocol.twin import iso_now
from ..storage.queuestore import QueuedMessage, QueueStore

FEEDBACK = "feedback"
FILE_NOTIFICATIONS = "filenotifications"
QUEUES = (FEEDBACK, FILE_NOTIFICATIONS)
FEEDBACK_CONTENT_TYPE = "application/vnd.microsoft.iothub.feedback.json"
FILE_NOTIFICATION_CONTENT_TYPE = "application/vnd.microsoft.iothub.filenotification.json"
TTL = 3600.0
MAX_DELIVERIES = 100

# C2D outcome -> the feedback record's statusCode and description; which `iothub-ack` asks for it
SUCCESS, EXPIRED, DELIVERY_COUNT_EXCEEDED, REJECTED, PURGED = (
    "Success", "Expired", "DeliveryCountExceeded", "Rejected", "Purged")
DESCRIPTIONS = {SUCCESS: "Success", EXPIRED: "Message expired",
                DELIVERY_COUNT_EXCEEDED: "Delivery count exceeded", REJECTED: "Message rejected",
                PURGED: "Message purged"}
ACKS = ("none", "positive", "negative", "full")
_WANTED_BY = {"positive": {SUCCESS}, "negative": {EXPIRED, DELIVERY_COUNT_EXCEEDED, REJECTED, PURGED},
              "full": set(DESCRIPTIONS)}


def feedback_wanted(ack: str | None, status: str) -> bool:
    return status in _WANTED_BY.get((ack or "none").lower(), set())


class ServiceBoundQueues:
    def __init__(self, queues: QueueStore, hub_name: str, clock: Callable[[], float]) -> None:
        self.queues = queues
        self.hub_name = hub_name
        self.clock = clock
        self.locked: dict[str, set[int]] = {queue: set() for queue in QUEUES}
        # called with a queue's name when it has something new to hand out
        self.listeners: list[Callable[[str], None]] = []

    def put(self, queue: str, body: Any, content_type: str) -> int:
        now = self.clock()
        props = {"content-type": content_type, "message-id": str(uuid.uuid4()),
                 "user-id": self.hub_name}
        seq = self.queues.add(queue, json.dumps(body).encode("utf-8"), props, now, now + TTL)
        self._changed(queue)
        return seq

    def feedback(self, records: list[dict[str, Any]]) -> None:
        """One feedback message with a batch of records (see :func:`feedback_record`)."""
        if records:
            self.put(FEEDBACK, records, FEEDBACK_CONTENT_TYPE)

    def feedback_record(self, device_id: str, generation_id: str, message_id: str,
                        status: str) -> dict[str, Any]:
        return {"originalMessageId": message_id, "description": DESCRIPTIONS[status],
                "deviceGenerationId": generation_id, "deviceId": device_id,
                "enqueuedTimeUtc": iso_now(self.clock()), "statusCode": status}

    def file_uploaded(self, notification: dict[str, Any]) -> None:
        self.put(FILE_NOTIFICATIONS, notification, FILE_NOTIFICATION_CONTENT_TYPE)

    # --- receivers ---------------------------------------------------------------------------
    def take(self, queue: str, limit: int) -> list[QueuedMessage]:
        """Up to ``limit`` messages nobody holds, now locked to the caller."""
        locked = self.locked[queue]
        rows = [row for row in self.queues.pending(queue, self.clock(), limit + len(locked), MAX_DELIVERIES)
                if row.seq not in locked][:limit]
        for row in rows:
            locked.add(row.seq)
            self.queues.delivered(row.seq)
        return rows

    def complete(self, queue: str, seq: int) -> None:
        """Completed (or rejected: dead-lettered, which here is the same end)."""
        self.locked[queue].discard(seq)
        self.queues.remove(seq)

    def abandon(self, queue: str, seq: int) -> None:
        self.locked[queue].discard(seq)
        self._changed(queue)

    def count(self, queue: str) -> int:
        return self.queues.count(queue, self.clock())

    def _changed(self, queue: str) -> None:
        for listener in list(self.listeners):
            listener(queue)
