"""The Event Hub-compatible endpoint: AMQP 1.0 over TLS on 5671, where back ends read IoT Hub's
device telemetry with ``azure-eventhub`` (its EventHubConsumerClient, unchanged).

- The engine is Qpid Proton's (transport, connection, collector), driven by the hub's asyncio
  loop, which also does TLS with the hub's certificate; amqp_frames.FullFrames pads what Proton
  sends so the official client can read it.
- Auth is claims-based (CBS): a ``put-token`` on ``$cbs`` with the SAS of a policy that grants
  ServiceConnect and covers the entity. Until one is accepted only ``$cbs`` links attach.
- ``$management`` answers READ for ``com.microsoft:eventhub`` (name, created_at, partition ids)
  and ``com.microsoft:partition`` (sequence numbers, last offset and enqueued time).
- Receivers attach at ``{entity}/ConsumerGroups/{group}/Partitions/{n}`` (``$Default`` or a group
  made with ``localhub eventhub consumer-group create``) and are positioned by
  the selector filter the client sends (``amqp.annotation.x-opt-offset > '-1'``, ``'@latest'``,
  ``x-opt-sequence-number``, ``x-opt-enqueued-time``). Events are the hub's telemetry rows: the
  offset is the row's hub-wide seq, the sequence number counts within the partition.

Not yet (issue 15): SASL, C2D and feedback over AMQP.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from typing import Any

from proton import (Collector, Condition, Connection, Described, Endpoint, Message, Transport,
                    symbol, timestamp)
from proton.handlers import MessagingHandler

from ..protocol import auth, rights
from ..protocol.rights import Right
from ..services.consumer_groups import ConsumerGroups
from ..services.hub import Hub
from ..storage.state import EVENTHUB_NAME
from ..storage.store import PARTITIONS, TelemetryRow
from .amqp_frames import FullFrames

log = logging.getLogger("localhub.amqp")

ENTITY = EVENTHUB_NAME
CBS, MANAGEMENT = "$cbs", "$management"
SELECTOR = symbol("apache.org:selector-filter:string")
_POSITION = re.compile(r"amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'?([^']*)'?")
_PARTITION_ADDRESS = re.compile(r"^(?:amqps://[^/]+/)?([^/]+)/ConsumerGroups/([^/]+)/Partitions/(\d+)$",
                                re.IGNORECASE)
BATCH = 100
CREATED = timestamp(0)


def event_message(row: TelemetryRow) -> Message:
    """A telemetry row as IoT Hub's built-in endpoint delivers it."""
    system = row.system_properties
    msg = Message(body=row.body)
    msg.inferred = True  # bytes: a data section, as the service sends
    if system.get("message-id"):
        msg.id = system["message-id"]
    if system.get("correlation-id"):
        msg.correlation_id = system["correlation-id"]
    if system.get("content-type"):
        msg.content_type = system["content-type"]
    if system.get("content-encoding"):
        msg.content_encoding = system["content-encoding"]
    msg.properties = dict(row.properties)
    enqueued = timestamp(int(row.enqueued * 1000))
    annotations: dict[Any, Any] = {
        symbol("x-opt-sequence-number"): row.partition_seq,
        symbol("x-opt-offset"): str(row.seq),
        symbol("x-opt-enqueued-time"): enqueued,
        symbol("iothub-connection-device-id"): row.device_id,
        symbol("iothub-enqueuedtime"): enqueued,
        symbol("iothub-message-source"): "Telemetry",
    }
    if system.get("iothub-connection-module-id"):
        annotations[symbol("iothub-connection-module-id")] = system["iothub-connection-module-id"]
    msg.annotations = annotations
    return msg


def _text(value: Any) -> str:
    """A symbol, string or binary as text (clients encode the selector filter differently)."""
    return bytes(value).decode("utf-8", "replace") if isinstance(value, (bytes, bytearray, memoryview)) else str(value)


def _path_of(address: str) -> str:
    """``sb://host/a/b`` or ``amqps://host/a/b`` or ``a/b`` -> ``a/b``."""
    for scheme in ("sb://", "amqps://", "amqp://"):
        if address.lower().startswith(scheme):
            return address[len(scheme):].partition("/")[2].strip("/")
    return address.strip("/")


class _Reader:
    """A partition receiver's place in its partition: the last offset (seq) delivered."""

    def __init__(self, link: Any, partition: int, after: int) -> None:
        self.link = link
        self.partition = partition
        self.after = after


class _Peer(MessagingHandler):
    """One AMQP connection's links: CBS, management, partition readers."""

    def __init__(self, server: AmqpServer) -> None:
        super().__init__(prefetch=10, auto_accept=False)
        self.server = server
        self.hub = server.hub
        self.grants: dict[str, float] = {}  # audience path put on $cbs -> token expiry
        self.repliers: dict[str, Any] = {}  # $cbs / $management -> the sender link answering
        self.readers: dict[str, _Reader] = {}  # link name -> reader
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
        if not link.is_sender:
            return self._refuse(link, "amqp:not-allowed", "the endpoint takes no messages here yet")
        match = _PARTITION_ADDRESS.match(address)
        if not self._granted(_path_of(address)):
            return self._refuse(link, "amqp:unauthorized-access", "put a token for it on $cbs first")
        if not match or match.group(1).lower() != ENTITY or int(match.group(3)) >= PARTITIONS:
            return self._refuse(link, "amqp:not-found", f"no such partition: {address[:120]}")
        if not ConsumerGroups(self.hub.store).exists(match.group(2)):
            return self._refuse(link, "amqp:not-found", f"no consumer group {match.group(2)[:60]!r}")
        partition = int(match.group(3))
        self.readers[link.name] = _Reader(link, partition, self._start(partition, link.remote_source.filter))

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

    def _start(self, partition: int, filters: Any) -> int:
        """The offset to deliver after, from the receiver's selector filter."""
        store = self.hub.store
        selector = ""
        filter_set = None
        if filters is not None:
            filters.rewind()
            if filters.next() is not None:
                filter_set = filters.get_object()
        if isinstance(filter_set, dict):
            for value in filter_set.values():
                if isinstance(value, Described) and _text(value.descriptor) == SELECTOR:
                    selector = _text(value.value)
        match = _POSITION.search(selector)
        if not match:
            return 0
        kind, operator, value = match.groups()
        inclusive = operator == ">="
        if kind == "offset":
            if value == "@latest":
                return store.partition_info(partition).last_offset
            offset = int(value) if value.lstrip("-").isdigit() else -1
            return max(0, offset - 1 if inclusive else offset)
        if kind == "sequence-number":
            number = int(value)
            return store.offset_before_sequence(partition, number if inclusive else number + 1)
        return store.offset_before_time(partition, int(value) / 1000.0, inclusive)

    def on_link_closing(self, event: Any) -> None:
        self.readers.pop(event.link.name, None)

    # --- events out ------------------------------------------------------------------------
    def on_sendable(self, event: Any) -> None:
        reader = self.readers.get(event.link.name)
        if reader is not None:
            self.fill(reader)

    def fill(self, reader: _Reader) -> None:
        link = reader.link
        while link.credit > 0 and link.state & Endpoint.LOCAL_ACTIVE:
            rows = self.hub.store.partition_after(reader.partition, reader.after, min(link.credit, BATCH))
            if not rows:
                return
            for row in rows:
                link.send(event_message(row))
                reader.after = row.seq

    def fill_partition(self, partition: int) -> None:
        for reader in list(self.readers.values()):
            if reader.partition == partition:
                self.fill(reader)

    # --- requests --------------------------------------------------------------------------
    def on_message(self, event: Any) -> None:
        msg = event.message
        address = event.link.remote_target.address or ""
        event.delivery.update(event.delivery.ACCEPTED)
        event.delivery.settle()
        props = msg.properties or {}
        if address == CBS:
            status, description, body = self._put_token(msg.body, props)
        elif address == MANAGEMENT:
            status, description, body = self._management(props)
        else:
            return
        reply = Message(correlation_id=msg.id, address=msg.reply_to, body=body)
        reply.properties = {"status-code": status, "status-description": description}
        replier = self.repliers.get(address)
        if replier is not None:
            replier.send(reply)

    def _verify(self, token: Any, path: str) -> auth.SasToken:
        # Event Hubs sign with the key's text (auth.sign_with_key_text), as the official client does
        return auth.verify_service_token(str(token or ""), self.hub.policies, self.hub.names,
                                         self.hub.clock(), Right.SERVICE_CONNECT, "/" + path,
                                         key_text=True)

    def _granted(self, path: str) -> bool:
        now = self.hub.clock()
        return any(expiry > now and rights.scope_covers(scope, path)
                   for scope, expiry in self.grants.items())

    def _put_token(self, token: Any, props: dict[str, Any]) -> tuple[int, str, Any]:
        """A token for an audience (``sb://{host}/{entity}[/...]``, the CBS ``name``): the
        links under it may attach until it expires."""
        path = _path_of(str(props.get("name", "")))
        if path.split("/")[0].lower() != ENTITY:
            return 404, f"no such entity: {path[:80]!r}", None
        try:
            parsed = self._verify(token, path)
        except auth.AuthError as exc:
            log.info("CBS token refused: %s", exc)
            return 401, f"Unauthorized: {exc}", None
        self.grants[path] = float(parsed.expiry)
        return 202, "Accepted", None

    def _management(self, props: dict[str, Any]) -> tuple[int, str, Any]:
        try:
            self._verify(props.get("security_token"), ENTITY)
        except auth.AuthError as exc:
            return 401, f"Unauthorized: {exc}", None
        if props.get("operation") != "READ" or str(props.get("name", "")).lower() != ENTITY:
            return 404, "no such entity or operation", None
        kind = props.get("type")
        if kind == "com.microsoft:eventhub":
            return 200, "OK", {"name": ENTITY, "created_at": CREATED,
                               "partition_ids": [str(p) for p in range(PARTITIONS)]}
        if kind == "com.microsoft:partition":
            partition = str(props.get("partition", ""))
            if not partition.isdigit() or int(partition) >= PARTITIONS:
                return 404, f"no partition {partition[:20]!r}", None
            info = self.hub.store.partition_info(int(partition))
            return 200, "OK", {
                "name": ENTITY, "partition": partition,
                "begin_sequence_number": max(info.first_seq, 0),
                "last_enqueued_sequence_number": info.last_seq,
                "last_enqueued_offset": str(info.last_offset),
                "last_enqueued_time_utc": timestamp(int(info.last_enqueued * 1000)),
                "is_partition_empty": info.last_seq < 0,
            }
        return 400, f"unknown management type {str(kind)[:60]!r}", None


class AmqpConnection(asyncio.Protocol):
    """Bytes from TLS into Proton's engine; its events to the peer handler; its output out."""

    def __init__(self, server: AmqpServer) -> None:
        self.server = server
        self.peer = _Peer(server)
        self.collector = Collector()
        self.connection = Connection()
        self.connection.collect(self.collector)
        # the last OPEN field: with it, FullFrames has every field to send
        self.connection.properties = {symbol("product"): "localhub"}
        self.engine = Transport(Transport.SERVER)
        self.engine.idle_timeout = 240  # pyamqp reads OPEN's idle-time-out; 0 would be "none"
        self.engine.bind(self.connection)
        self.frames = FullFrames()
        self.socket: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.socket = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.engine.push(data)
        self.process()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
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


class AmqpServer:
    def __init__(self, hub: Hub, ssl_context: ssl.SSLContext) -> None:
        self.hub = hub
        self.ssl_context = ssl_context
        self.connections: set[AmqpConnection] = set()
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: AmqpConnection(self), host, port,
                                               ssl=self.ssl_context, ssl_handshake_timeout=10,
                                               reuse_address=True)
        self.hub.telemetry.listeners.append(self.telemetry_arrived)

    def telemetry_arrived(self, partition: int) -> None:
        for conn in list(self.connections):
            conn.telemetry_arrived(partition)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            if conn.socket is not None:
                conn.socket.abort()
