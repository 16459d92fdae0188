"""Connections nobody has authenticated on yet, at most so many per listener (MQTT before
CONNECT, HTTPS before a request with a valid token, AMQP before a CBS token).

Past the cap the one that has waited longest is turned away for the newcomer: a flood of idle
sockets ages out instead of locking real clients out. The count of those turned away is logged at
1, 2, 4, 8, ... so that a flood leaves a few lines, not one a connection.
"""

from __future__ import annotations

import logging
from typing import Callable, Generic, Hashable, TypeVar

C = TypeVar("C", bound=Hashable)


class WaitingRoom(Generic[C]):
    def __init__(self, cap: int, what: str, log: logging.Logger,
                 turn_away: Callable[[C], None]) -> None:
        self.cap = cap
        self.what = what  # "HTTPS connections": how the log line names them
        self.log = log
        self.turn_away = turn_away
        self.turned_away = 0
        self._waiting: dict[C, None] = {}  # oldest first

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, conn: object) -> bool:
        return conn in self._waiting

    def admit(self, conn: C) -> None:
        if len(self._waiting) >= self.cap:
            oldest = next(iter(self._waiting))
            del self._waiting[oldest]
            self.turned_away += 1
            if self.turned_away & (self.turned_away - 1) == 0:
                self.log.warning("%d %s turned away (the longest waiting to authenticate closed for a newcomer); "
                                 "%d wait now", self.turned_away, self.what, len(self._waiting) + 1)
            self.turn_away(oldest)
        self._waiting[conn] = None

    def leave(self, conn: C) -> None:
        """``conn`` authenticated, or is gone: it no longer counts."""
        self._waiting.pop(conn, None)
