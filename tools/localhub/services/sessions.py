"""Live connections: at most one per identity (a device, or one module of a device), a new one
drops the old (IoT Hub's rule).

Services deliver to a device through the :class:`DeviceSession` interface, so they do not know
about MQTT; the MQTT connection handler implements it.
"""

from __future__ import annotations

from typing import Protocol


class DeviceSession(Protocol):
    device_id: str
    module_id: str | None  # set for a module identity's connection
    identity: str  # the device id, or store.module_identity(device, module): what sessions are keyed by
    subscriptions: dict[str, int]  # kind from topics.SUB_* -> granted QoS
    clean_session: bool  # False: the subscriptions outlive the connection (Hub keeps them)

    def publish(self, topic: str, payload: bytes, qos: int) -> int | None:
        """Queue a PUBLISH; return its packet id for QoS 1 (None for QoS 0 or when closed)."""

    def close(self, reason: str) -> None:
        """Drop the connection (idempotent)."""


class SessionRegistry:
    def __init__(self) -> None:
        self._sessions: dict[str, DeviceSession] = {}

    def attach(self, session: DeviceSession) -> None:
        old = self._sessions.get(session.identity)
        self._sessions[session.identity] = session
        if old is not None and old is not session:
            old.close("a new connection for this device replaced it")

    def detach(self, session: DeviceSession) -> bool:
        """Forget ``session`` if it is still the current one; return whether it was."""
        if self._sessions.get(session.identity) is session:
            del self._sessions[session.identity]
            return True
        return False

    def get(self, identity: str) -> DeviceSession | None:
        return self._sessions.get(identity)

    def drop(self, identity: str, reason: str) -> None:
        session = self._sessions.pop(identity, None)
        if session is not None:
            session.close(reason)

    def drop_device(self, device_id: str, reason: str) -> None:
        """Drop the device's connection and those of its modules."""
        for session in [s for s in self._sessions.values() if s.device_id == device_id]:
            self.drop(session.identity, reason)

    def connected(self, identity: str) -> bool:
        return identity in self._sessions

    def count(self) -> int:
        return len(self._sessions)
