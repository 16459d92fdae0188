"""The HTTPS listener's guard against clients that connect and then stall.

aiohttp bounds neither how long a client may take over its request head nor how many idle
connections it holds; a few hundred half-sent requests used up the hub's file descriptors and
locked every device out. The gate sits between the TLS transport and aiohttp's protocol:

- a connection that no request with a valid token has come over yet is *unvouched*; at most
  ``cap`` of them are open at once: past that, the one that has waited longest is closed for
  the newcomer, so a flood of idle sockets cannot lock out a client that connects during it
  (a client sends its request at once and is vouched for long before the flood reaches it);
- a new connection has ``head_timeout`` seconds to deliver a whole first request head (it has
  reached a handler by then) or it is closed; later heads on a keep-alive connection are bounded
  by aiohttp's keep-alive timeout, which closes a connection whose next head is not complete in
  time;
- request bodies are read with a deadline (routing.read_body).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from ..support.waiting_room import WaitingRoom

log = logging.getLogger("localhub.https")

HEAD_TIMEOUT = 10.0  # seconds from accept to a first request head that reached a handler
KEEPALIVE_TIMEOUT = 60.0  # seconds an idle keep-alive connection, or its next head, may take
BODY_TIMEOUT = 30.0  # seconds to send a whole request body (at most 512 KB)
TLS_HANDSHAKE_TIMEOUT = 10.0
# After an answer sent before the body was read (a 401, a 408), aiohttp reads on for this long
# so the client sees the answer rather than a reset; its default, 10 s, let a stalled body hold
# the connection that much longer.
LINGERING_TIME = 2.0


class ConnectionGate:
    def __init__(self, cap: int, head_timeout: float = HEAD_TIMEOUT,
                 body_timeout: float = BODY_TIMEOUT) -> None:
        self.cap = cap
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.timed_out = 0
        self._unvouched: WaitingRoom[Any] = WaitingRoom(
            cap, "HTTPS connections", log, self._turn_away)
        self._deadlines: dict[Any, asyncio.TimerHandle] = {}  # transport -> its first head's

    @property
    def unvouched(self) -> int:
        return len(self._unvouched)

    @property
    def turned_away(self) -> int:
        return self._unvouched.turned_away

    def protocol_factory(self, inner: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory (``AppRunner.server``) for ``loop.create_server``."""
        return lambda: _GatedProtocol(self, inner())

    def head_received(self, transport: Any) -> None:
        """A request head came over ``transport`` whole: its deadline is met."""
        deadline = self._deadlines.pop(transport, None)
        if deadline is not None:
            deadline.cancel()

    def vouch(self, transport: Any) -> None:
        """A request with a valid token came over ``transport``: it no longer counts."""
        self.head_received(transport)
        self._unvouched.leave(transport)

    def _turn_away(self, transport: Any) -> None:
        self.head_received(transport)  # its deadline goes with it
        transport.abort()

    def _admit(self, transport: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        self._unvouched.admit(transport)
        self._deadlines[transport] = loop.call_later(self.head_timeout, self._expire, transport)

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        if self._deadlines.pop(transport, None) is not None:
            self.timed_out += 1
            if self.timed_out & (self.timed_out - 1) == 0:
                log.warning("%d HTTPS connections closed for sending no request head in %.0f s",
                            self.timed_out, self.head_timeout)
            transport.abort()


class _GatedProtocol(asyncio.Protocol):
    """Tells the gate of a connection's start and end; passes every callback to aiohttp's."""

    def __init__(self, gate: ConnectionGate, inner: asyncio.BaseProtocol) -> None:
        self._gate = gate
        self._inner: Any = inner
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._gate._admit(transport)
        self._transport = transport
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._gate.vouch(self._transport)  # forget it
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()
