"""Hub services over a real SQLite store with the clock passed in (no sleeping): C2D time to
live and QoS handling, twin replace notifications, connection replacement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from localhub.protocol.errors import HubError
from localhub.protocol.rights import Policy, Right
from localhub.protocol.topics import SUB_C2D, SUB_DESIRED
from localhub.server import open_hub


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeSession:
    """Stands in for an MQTT connection: records what the hub would send."""

    def __init__(self, device_id: str, subscriptions: dict[str, int]) -> None:
        self.device_id = self.identity = device_id
        self.module_id = None
        self.subscriptions = subscriptions
        self.clean_session = True
        self.sent: list[tuple[str, bytes, int]] = []
        self.closed: str | None = None
        self._pid = 0

    def publish(self, topic: str, payload: bytes, qos: int) -> int | None:
        self.sent.append((topic, payload, qos))
        if qos:
            self._pid += 1
            return self._pid
        return None

    def close(self, reason: str) -> None:
        self.closed = reason


@pytest.fixture
def hub(tmp_path: Path):
    clock = Clock()
    h = open_hub(tmp_path / "hub.sqlite3", frozenset({"hub.local"}), {"iothubowner": Policy("iothubowner", "a2V5", Right.ALL)}, clock)
    h.registry.create("d1")
    yield h, clock
    h.close()


def test_c2d_ttl_expires_queued_messages(hub) -> None:
    h, clock = hub
    h.c2d.send("d1", b"short", ttl=10)
    h.c2d.send("d1", b"long", ttl=100)
    assert h.c2d.pending_count("d1") == 2
    clock.now += 10
    assert h.c2d.pending_count("d1") == 1
    session = FakeSession("d1", {SUB_C2D: 1})
    h.session_opened(session, clean_session=True)
    session.subscriptions[SUB_C2D] = 1
    h.c2d.deliver(session)  # what the MQTT endpoint does on a C2D SUBSCRIBE
    assert [p for _, p, _ in session.sent] == [b"long"]
    with pytest.raises(HubError) as err:
        h.c2d.send("d1", b"x", ttl=0)
    assert err.value.status == 400


def test_c2d_qos1_waits_for_puback_qos0_does_not(hub) -> None:
    h, _ = hub
    s1 = FakeSession("d1", {SUB_C2D: 1})
    h.session_opened(s1, clean_session=True)
    h.c2d.send("d1", b"one")
    assert len(s1.sent) == 1 and h.c2d.pending_count("d1") == 1
    h.c2d.on_puback(s1, 999)  # unknown packet id: nothing completes
    assert h.c2d.pending_count("d1") == 1
    h.c2d.on_puback(s1, 1)
    assert h.c2d.pending_count("d1") == 0
    s0 = FakeSession("d1", {SUB_C2D: 0})
    h.session_opened(s0, clean_session=True)
    assert s1.closed  # a new connection drops the old one
    h.c2d.send("d1", b"two")
    assert s0.sent[0][1:] == (b"two", 0) and h.c2d.pending_count("d1") == 0


def test_replace_twin_notifies_whole_desired(hub) -> None:
    h, _ = hub
    session = FakeSession("d1", {SUB_DESIRED: 1})
    h.session_opened(session, clean_session=True)
    h.twins.update("d1", {"properties": {"desired": {"a": 1, "b": 2}}}, None)
    twin = h.twins.update("d1", {"tags": {"t": 1}, "properties": {"desired": {"c": 3}}}, '"*"',
                          replace=True)
    assert twin["properties"]["desired"]["c"] == 3 and "a" not in twin["properties"]["desired"]
    topic, payload, _ = session.sent[-1]
    assert topic == "$iothub/twin/PATCH/properties/desired/?$version=3"
    assert json.loads(payload) == {"c": 3, "$version": 3}
    with pytest.raises(HubError) as err:
        h.twins.update("d1", {"tags": {"x": 1}}, '"stale-etag"')
    assert err.value.status == 412
    with pytest.raises(HubError) as err:
        h.twins.update("d1", {"properties": {"reported": {"x": 1}}}, None)
    assert err.value.status == 400
