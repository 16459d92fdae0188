"""Telemetry: number the messages, send them when the session can take them now, otherwise keep
them in the ring on flash and send them, oldest first, once it can.

Order: the session's own RAM queue holds only what was in flight when the link broke (older than
anything on flash), and the flash ring is drained only while that RAM queue is empty, so the hub
receives messages in the order they were made. Delivery is at-least-once: a message whose PUBACK
was lost is sent again after the reconnect. Messages are ``{"boot": b, "seq": n, "ts": unix, ...}``:
``boot`` counts resets, ``seq`` counts messages since this boot.
"""

import json

from app.events import emit

PROPS = (("$.ct", "application/json"), ("$.ce", "utf-8"))


class Telemetry:
    def __init__(self, client, ring, boot):
        self.client = client
        self.ring = ring
        self.boot = boot
        self.seq = 0

    def make(self, readings, unix_time):
        self.seq += 1
        record = {"boot": self.boot, "seq": self.seq, "ts": unix_time}
        record.update(readings)
        return json.dumps(record).encode()

    def send(self, body):
        """Send ``body`` now or keep it on flash; returns True if it went out now."""
        if not len(self.ring) and self.client.can_send_now():
            if self.client.send_telemetry(body, PROPS):
                emit("telemetry", {"seq": self.seq, "queued": False})
                return True
            return False  # the session lost the link and kept the message in its queue
        self.ring.push(body)
        emit("telemetry", {"seq": self.seq, "queued": True, "pending": len(self.ring), "drops": self.ring.drops})
        return False

    def drain(self, limit=4):
        """Move up to ``limit`` messages from flash to the session; the number moved."""
        moved = 0
        while moved < limit and len(self.ring) and self.client.can_send_now():
            body = self.ring.peek()
            if body:
                # Sent, or (link lost during the write) kept at the head of the session's
                # queue: either way it has left the flash ring, in order.
                self.client.send_telemetry(body, PROPS)
            self.ring.pop()
            moved += 1
        if moved and not len(self.ring):
            emit("queue_drained", {"drops": self.ring.drops})
        return moved

    def dropped(self):
        return self.ring.drops + self.client.stats()["dropped"]
