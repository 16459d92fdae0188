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


# One telemetry stream a board: module state rather than a class and its instance, which would
# cost heap in place for nothing (app.telemetry is this module: app.telemetry.send(...)).
_client = None
ring = None  # the flash ring (app.offline_queue.FlashQueue)
_boot = 0
seq = 0


def setup(client, flash_ring, boot):
    global _client, ring, _boot, seq
    _client, ring, _boot, seq = client, flash_ring, boot, 0


def make(readings, unix_time):
    global seq
    seq += 1
    record = {"boot": _boot, "seq": seq, "ts": unix_time}
    record.update(readings)
    return json.dumps(record).encode()


def send(body):
    """Send ``body`` now or keep it on flash; returns True if it went out now."""
    if not len(ring) and _client.can_send_now():
        if _client.send_telemetry(body, PROPS):
            emit("telemetry", {"seq": seq, "queued": False})
            return True
        return False  # the session lost the link and kept the message in its queue
    ring.push(body)
    emit("telemetry", {"seq": seq, "queued": True, "pending": len(ring), "drops": ring.drops})
    return False


def drain(limit=4):
    """Move up to ``limit`` messages from flash to the session; the number moved."""
    moved = 0
    while moved < limit and len(ring) and _client.can_send_now():
        body = ring.peek()
        if body:
            # Sent, or (link lost during the write) kept at the head of the session's
            # queue: either way it has left the flash ring, in order.
            _client.send_telemetry(body, PROPS)
        ring.pop()
        moved += 1
    if moved and not len(ring):
        emit("queue_drained", {"drops": ring.drops})
    return moved


def dropped():
    return ring.drops + _client.stats()["dropped"]
