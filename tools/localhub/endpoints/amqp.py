"""The hub's AMQP 1.0 endpoint over TLS on 5671: the Event Hub-compatible endpoint, where back
ends read device telemetry with ``azure-eventhub`` (amqp_eventhub.py), and IoT Hub's service
endpoint, where the service SDKs send C2D and read feedback and file notifications
(amqp_service.py). Both are reached unchanged by the official clients.

- The engine is Qpid Proton's (transport, connection, collector), driven by the hub's asyncio
  loop, which also does TLS with the hub's certificate; amqp_frames.FullFrames pads what Proton
  sends so azure-eventhub can read it.
- SASL is answered in front of Proton (amqp_sasl.py: uamqp, inside azure-iot-hub, asks for
  MSSBCBS) and not required (azure-eventhub's pyamqp sends none): the proof is the CBS token.
- Auth is claims-based (CBS): a ``put-token`` on ``$cbs`` with the SAS of a policy that grants
  ServiceConnect, for an audience. An Event Hub audience (``sb://{host}/{entity}``) is signed with
  the key's text, as Event Hubs do; an IoT Hub one (``{host}`` or ``https://{host}[/path]``) with
  the key's bytes, as IoT Hub does. Until one is accepted only ``$cbs`` links attach, and a link
  attaches only under an audience of its kind.
- A connection has ``AUTH_TIMEOUT`` seconds to have a token accepted, and at most
  ``max_unauthenticated`` wait at once (past that the longest waiting is closed for a newcomer),
  as on the MQTT and HTTPS listeners. Idle timeouts are Proton's, each connection's timer set to
  the deadline Proton gives: the hub advertises 240 s and sends heartbeats inside the client's.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

from proton import (Collector, Condition, Connection, Delivery, Endpoint, Link, Message,
                    Transport, int32, symbol)
from proton.handlers import MessagingHandler

from ..protocol import auth, rights
from ..protocol.rights import Right
from ..services.consumer_groups import ConsumerGroups
from ..services.hub import Hub
from ..storage.store import PARTITIONS
from ..support.waiting_room import WaitingRoom
from . import amqp_eventhub as eventhub
from . import amqp_service as service
from .amqp_frames import FullFrames
from .amqp_sasl import SaslFront, SaslRefused
from .mqtt import MAX_UNAUTHENTICATED

log = logging.getLogger("localhub.amqp")

CBS, MANAGEMENT = "$cbs", "$management"
AUTH_TIMEOUT = 10.0
EVENTHUB, IOTHUB = "eventhub", "iothub"  # the two kinds of audience
BATCH = 100


def _path_of(address: str) -> str:
    """``sb://host/a/b``, ``amqps://host/a/b``, ``https://host/a/b`` or ``/a/b`` -> ``a/b``."""
    for scheme in ("sb://", "amqps://", "amqp://", "https://"):
        if address.lower().startswith(scheme):
            return address[len(scheme):].partition("/")[2].strip("/")
    return address.strip("/")


class _Reader:
    """A partition receiver's place in its partition: the last offset (seq) delivered."""

    def __init__(self, link: Any, partition: int, after: int) -> None:
        self.link = link
        self.partition = partition
        self.after = after


class _QueueReader:
    """A receiver of a service-bound queue and the messages locked to it (delivery tag -> seq)."""

    def __init__(self, link: Any, queue: str) -> None:
        self.link = link
        self.queue = queue
        self.held: dict[str, int] = {}


class _Peer(MessagingHandler):
    """One AMQP connection's links: CBS, management, partition readers, C2D, service queues."""

    def __init__(self, server: AmqpServer, connection: AmqpConnection) -> None:
        super().__init__(prefetch=10, auto_accept=False)
        self.server = server
        self.connection = connection
        self.hub = server.hub
        self.grants: dict[tuple[str, str], float] = {}  # (kind, audience path) -> token expiry
        self.repliers: dict[str, Any] = {}  # $cbs / $management -> the sender link answering
        self.readers: dict[str, _Reader] = {}  # link name -> reader
        self.queue_readers: dict[str, _QueueReader] = {}
        self.refused: list[tuple[Any, Condition]] = []

    # --- links ---------------------------------------------------------------------------
    def on_link_opening(self, event: Any) -> None:
        link = event.link
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        address = (link.remote_source.address if link.is_sender else link.remote_target.address) or ""
        if address in (CBS, MANAGEMENT):
            if link.is_sender:
                self.repliers[address] = link
            return
        path = _path_of(address)
        if not link.is_sender:
            if path.lower() != service.DEVICEBOUND:
                return self._refuse(link, "amqp:not-found", f"no such target: {address[:120]}")
            if not self._granted(IOTHUB, path):
                return self._refuse(link, "amqp:unauthorized-access", "put a token for it on $cbs first")
            return
        queue = service.QUEUE_SOURCES.get(path.lower())
        if queue is not None:
            if not self._granted(IOTHUB, path):
                return self._refuse(link, "amqp:unauthorized-access", "put a token for it on $cbs first")
            self.queue_readers[link.name] = _QueueReader(link, queue)
            return
        match = eventhub.PARTITION_ADDRESS.match(address)
        if not self._granted(EVENTHUB, path):
            return self._refuse(link, "amqp:unauthorized-access", "put a token for it on $cbs first")
        if not match or match.group(1).lower() != eventhub.ENTITY or int(match.group(3)) >= PARTITIONS:
            return self._refuse(link, "amqp:not-found", f"no such partition: {address[:120]}")
        if not ConsumerGroups(self.hub.store).exists(match.group(2)):
            return self._refuse(link, "amqp:not-found", f"no consumer group {match.group(2)[:60]!r}")
        partition = int(match.group(3))
        start = eventhub.start_offset(self.hub.store, partition, link.remote_source.filter)
        self.readers[link.name] = _Reader(link, partition, start)

    def _refuse(self, link: Any, condition: str, why: str) -> None:
        # MessagingHandler opens the link right after on_link_opening returns: it is closed,
        # with the reason, once that is done (close_refused), which sends ATTACH then DETACH.
        log.info("link %s refused: %s", link.name, why)
        self.refused.append((link, Condition(condition, why)))

    def close_refused(self) -> None:
        while self.refused:
            link, condition = self.refused.pop()
            link.condition = condition
            link.close()

    def on_link_closing(self, event: Any) -> None:
        self.readers.pop(event.link.name, None)
        self._release(self.queue_readers.pop(event.link.name, None))

    def release_all(self) -> None:
        """The connection is gone: what its receivers held is handed out again."""
        for reader in list(self.queue_readers.values()):
            self._release(reader)
        self.queue_readers.clear()
        self.readers.clear()

    def _release(self, reader: _QueueReader | None) -> None:
        if reader is not None:
            for seq in reader.held.values():
                self.hub.servicebound.abandon(reader.queue, seq)
            reader.held.clear()

    # --- messages out ----------------------------------------------------------------------
    def on_sendable(self, event: Any) -> None:
        reader = self.readers.get(event.link.name)
        if reader is not None:
            self.fill(reader)
        queue_reader = self.queue_readers.get(event.link.name)
        if queue_reader is not None:
            self.fill_queue_reader(queue_reader)

    def fill(self, reader: _Reader) -> None:
        link = reader.link
        while link.credit > 0 and link.state & Endpoint.LOCAL_ACTIVE:
            rows = self.hub.store.partition_after(reader.partition, reader.after, min(link.credit, BATCH))
            if not rows:
                return
            for row in rows:
                link.send(eventhub.event_message(row))
                reader.after = row.seq

    def fill_partition(self, partition: int) -> None:
        for reader in list(self.readers.values()):
            if reader.partition == partition:
                self.fill(reader)

    def fill_queue_reader(self, reader: _QueueReader) -> None:
        link = reader.link
        if link.credit <= 0 or not link.state & Endpoint.LOCAL_ACTIVE:
            return
        presettled = link.remote_snd_settle_mode == Link.SND_SETTLED
        for row in self.hub.servicebound.take(reader.queue, min(link.credit, BATCH)):
            tag = str(row.seq)
            delivery = link.send(service.queue_message(row), tag)
            if presettled:  # the receiver will not settle: handing it out completes it
                delivery.settle()
                self.hub.servicebound.complete(reader.queue, row.seq)
            else:
                reader.held[tag] = row.seq

    def fill_queue(self, queue: str) -> None:
        for reader in list(self.queue_readers.values()):
            if reader.queue == queue:
                self.fill_queue_reader(reader)

    def _settled_by_receiver(self, event: Any, completed: bool) -> None:
        reader = self.queue_readers.get(event.link.name)
        if reader is None:
            return
        tag = event.delivery.tag
        seq = reader.held.pop(tag.decode() if isinstance(tag, bytes) else str(tag), None)
        if seq is None:
            return
        if completed:
            self.hub.servicebound.complete(reader.queue, seq)
        else:
            self.hub.servicebound.abandon(reader.queue, seq)

    def on_accepted(self, event: Any) -> None:
        self._settled_by_receiver(event, True)

    def on_rejected(self, event: Any) -> None:  # dead-lettered: IoT Hub drops it too
        self._settled_by_receiver(event, True)

    def on_released(self, event: Any) -> None:  # released or modified: abandoned
        self._settled_by_receiver(event, False)

    # --- messages in -----------------------------------------------------------------------
    def on_message(self, event: Any) -> None:
        msg = event.message
        address = event.link.remote_target.address or ""
        if address not in (CBS, MANAGEMENT):
            return self._c2d(event)
        event.delivery.update(Delivery.ACCEPTED)
        event.delivery.settle()
        props = msg.properties or {}
        if address == CBS:
            status, description, body = self._put_token(msg.body, props)
        else:
            status, description, body = self._management(props)
        reply = Message(correlation_id=msg.id, address=msg.reply_to, body=body)
        # an int, not Proton's default long: uamqp reads the status code as AMQP int only
        reply.properties = {"status-code": int32(status), "status-description": description}
        replier = self.repliers.get(address)
        if replier is not None:
            replier.send(reply)

    def _c2d(self, event: Any) -> None:
        delivery = event.delivery
        if not self._granted(IOTHUB, service.DEVICEBOUND):  # the token put for it expired
            delivery.local.condition = Condition("amqp:unauthorized-access", "the token expired")
            delivery.update(Delivery.REJECTED)
        else:
            try:
                service.send_c2d(self.hub.c2d, event.message, self.hub.clock())
            except service.C2DRefused as exc:
                log.info("C2D refused: %s", exc)
                delivery.local.condition = exc.condition
                delivery.update(Delivery.REJECTED)
            else:
                delivery.update(Delivery.ACCEPTED)
        delivery.settle()

    # --- CBS and management ----------------------------------------------------------------
    def _audience(self, name: str) -> tuple[str, str]:
        """(kind, path) of a CBS audience: the Event Hub's entity, or a path of the IoT Hub."""
        if "://" not in name:
            first, _, rest = name.strip("/").partition("/")
            if first.lower() in self.hub.names or first.lower().rpartition(":")[0] in self.hub.names:
                name = rest
        path = _path_of(name)
        kind = EVENTHUB if path.split("/")[0].lower() == eventhub.ENTITY else IOTHUB
        return kind, path

    def _verify(self, token: Any, kind: str, path: str) -> auth.SasToken:
        # Event Hubs sign with the key's text (auth.sign_with_key_text), IoT Hub with its bytes
        return auth.verify_service_token(str(token or ""), self.hub.policies, self.hub.names,
                                         self.hub.clock(), Right.SERVICE_CONNECT, "/" + path,
                                         key_text=kind == EVENTHUB)

    def _granted(self, kind: str, path: str) -> bool:
        now = self.hub.clock()
        return any(grant_kind == kind and expiry > now and rights.scope_covers(scope, path)
                   for (grant_kind, scope), expiry in self.grants.items())

    def _put_token(self, token: Any, props: dict[str, Any]) -> tuple[int, str, Any]:
        """A token for an audience (the CBS ``name``): the links under it may attach until it
        expires."""
        kind, path = self._audience(str(props.get("name", "")))
        try:
            parsed = self._verify(token, kind, path)
        except auth.AuthError as exc:
            log.info("CBS token refused: %s", exc)
            return 401, f"Unauthorized: {exc}", None
        self.grants[(kind, path)] = float(parsed.expiry)
        self.server.authenticated(self.connection)
        return 202, "Accepted", None

    def _management(self, props: dict[str, Any]) -> tuple[int, str, Any]:
        try:
            self._verify(props.get("security_token"), EVENTHUB, eventhub.ENTITY)
        except auth.AuthError as exc:
            return 401, f"Unauthorized: {exc}", None
        return eventhub.management_answer(self.hub.store, props)


class AmqpConnection(asyncio.Protocol):
    """Bytes from TLS into Proton's engine; its events to the peer handler; its output out."""

    def __init__(self, server: AmqpServer) -> None:
        self.server = server
        self.opened = time.monotonic()
        self.peer = _Peer(server, self)
        self.collector = Collector()
        self.connection = Connection()
        self.connection.collect(self.collector)
        # the last OPEN field: with it, FullFrames has every field to send
        self.connection.properties = {symbol("product"): "localhub"}
        self.engine = Transport(Transport.SERVER)
        self.sasl = SaslFront()
        self.engine.idle_timeout = 240  # pyamqp reads OPEN's idle-time-out; 0 would be "none"
        self.engine.bind(self.connection)
        self.frames = FullFrames()
        self.socket: asyncio.Transport | None = None
        self._auth_timer: asyncio.TimerHandle | None = None
        self._tick_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.socket = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self.server.unauthenticated.admit(self)
        loop = asyncio.get_running_loop()
        self._auth_timer = loop.call_later(self.server.auth_timeout, self._auth_expired)
        self._retick()

    def abort(self) -> None:
        if self.socket is not None:
            self.socket.abort()

    def _auth_expired(self) -> None:
        if self in self.server.unauthenticated:
            self.server.token_timed_out()
            self.abort()

    def _retick(self) -> None:
        """Proton's timers (idle timeout, heartbeats): run what is due, wake at the next."""
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None
        now = time.monotonic()
        deadline = self.engine.tick(now)
        if deadline and self.socket is not None and not self.socket.is_closing():
            self._tick_timer = asyncio.get_running_loop().call_later(max(0.0, deadline - now), self._on_timer)

    def _on_timer(self) -> None:
        self._tick_timer = None
        self.process()  # dispatches what the tick did (an idle connection closing), sends, reticks

    def data_received(self, data: bytes) -> None:
        if not self.sasl.done:
            try:
                data, reply = self.sasl.feed(data)
            except SaslRefused as exc:
                log.info("AMQP connection refused: %s", exc)
                if self.socket is not None:
                    self.socket.write(exc.reply)
                    self.socket.close()
                return
            if reply and self.socket is not None:
                self.socket.write(reply)
        # Proton takes at most its capacity per push (a TLS read can hold more): what it has is
        # processed before the rest goes in
        view = memoryview(data)
        while view:
            capacity = self.engine.capacity()
            if capacity < 0:  # the engine reads no more: the connection is closing
                return
            if capacity == 0:  # nothing it could take, even once processed: give up on the peer
                log.warning("AMQP engine stalled; closing the connection")
                if self.socket is not None:
                    self.socket.abort()
                return
            self.engine.push(bytes(view[:capacity]))
            view = view[capacity:]
            self.process()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.server.unauthenticated.leave(self)
        for timer in (self._auth_timer, self._tick_timer):
            if timer is not None:
                timer.cancel()
        self._tick_timer = None
        self.peer.release_all()
        self.engine.close_tail()
        self.engine.close_head()

    def process(self) -> None:
        try:
            while (event := self.collector.peek()) is not None:
                event.dispatch(self.peer)
                self.collector.pop()
                self.peer.close_refused()
        except Exception:  # one broken peer must not take the endpoint down
            log.exception("AMQP connection failed")
            if self.socket is not None:
                self.socket.abort()
            return
        self.flush()
        self._retick()

    def flush(self) -> None:
        pending = self.engine.pending()
        if pending > 0 and self.socket is not None:
            data = self.engine.peek(pending)
            self.engine.pop(pending)
            self.socket.write(self.frames.feed(data))
        if self.engine.closed and self.socket is not None:
            self.socket.close()

    def telemetry_arrived(self, partition: int) -> None:
        self.peer.fill_partition(partition)
        self.process()

    def queue_changed(self, queue: str) -> None:
        self.peer.fill_queue(queue)
        self.process()


class AmqpServer:
    def __init__(self, hub: Hub, ssl_context: ssl.SSLContext,
                 max_unauthenticated: int = MAX_UNAUTHENTICATED, auth_timeout: float = AUTH_TIMEOUT) -> None:
        self.hub = hub
        self.ssl_context = ssl_context
        self.auth_timeout = auth_timeout
        self.connections: set[AmqpConnection] = set()
        self.unauthenticated: WaitingRoom[AmqpConnection] = WaitingRoom(
            max_unauthenticated, "AMQP connections", log, AmqpConnection.abort)
        self.timed_out = 0
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: AmqpConnection(self), host, port,
                                               ssl=self.ssl_context, ssl_handshake_timeout=10,
                                               reuse_address=True)
        self.hub.telemetry.listeners.append(self.telemetry_arrived)
        self.hub.servicebound.listeners.append(self.queue_changed)

    def authenticated(self, conn: AmqpConnection) -> None:
        self.unauthenticated.leave(conn)

    def token_timed_out(self) -> None:
        self.timed_out += 1
        if self.timed_out & (self.timed_out - 1) == 0:  # 1, 2, 4, ...: the log stays small
            log.warning("%d AMQP connections closed for putting no token in %.0f s",
                        self.timed_out, self.auth_timeout)

    def telemetry_arrived(self, partition: int) -> None:
        for conn in list(self.connections):
            conn.telemetry_arrived(partition)

    def queue_changed(self, queue: str) -> None:
        # Later, not now: a queue changes while a connection's events are being dispatched (an
        # abandon, a C2D whose QoS 0 delivery leaves feedback), and that dispatch must not
        # re-enter its own engine.
        asyncio.get_running_loop().call_soon(self._fill_queue, queue)

    def _fill_queue(self, queue: str) -> None:
        for conn in list(self.connections):
            conn.queue_changed(queue)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            if conn.socket is not None:
                conn.socket.abort()
