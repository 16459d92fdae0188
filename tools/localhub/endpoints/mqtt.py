"""The MQTT endpoint: one :class:`MqttConnection` per TLS connection, speaking IoT Hub's dialect.

Rules enforced (IoT Hub's, see DESIGN.md section 3):
- the first packet must be CONNECT, within ``CONNECT_TIMEOUT``; it is checked against the
  registry and refused with a CONNACK code (5 for any authentication failure), then closed;
- the connection is closed when its SAS token expires, when the device is silent for 1.5x its
  keepalive (keepalive capped at 1177 s), on a QoS 2 PUBLISH, on a PUBLISH to a topic outside the
  device's namespace, on a malformed or oversized packet, and when a newer connection of the same
  device arrives;
- at most 5 subscriptions, only the IoT Hub topic filters; other filters get SUBACK 0x80;
- twin and method responses go only to this connection (topics carry no device id);
- a Will on the device's telemetry topic is sent as telemetry (``iothub-MessageType: Will``)
  when the connection ends without a DISCONNECT; a Will on any other topic is ignored.
A fault in one connection never reaches another: every handler failure closes only its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import Any, Callable, Protocol

from ..protocol import topics
from ..protocol.errors import HubError
from ..protocol.mqtt_codec import (
    CONNACK_ACCEPTED,
    SUBACK_FAILURE,
    Connack,
    Connect,
    Disconnect,
    MalformedPacket,
    PacketReader,
    PacketTooLarge,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    encode,
)
from ..protocol.twin import TwinError, parse_json_object
from ..services.hub import ConnectRefused, Hub
from ..services.telemetry import MAX_MESSAGE
from ..support.waiting_room import WaitingRoom
from .mqtt_dps import DpsLink, is_dps_connect

log = logging.getLogger("localhub.mqtt")

CONNECT_TIMEOUT = 10.0
# Connections past TLS that have not yet sent an accepted CONNECT. Beyond this the one that has
# waited longest is closed for the newcomer: a flood of idle sockets must not exhaust the hub's
# file descriptors, nor lock out a device that connects during it (a device sends its CONNECT
# at once, so it is past the count long before the flood's sockets push it out).
MAX_UNAUTHENTICATED = 256
MAX_KEEPALIVE = 1177
MAX_SUBSCRIPTIONS = 5
# A D2C message is at most 256 KB; leave room for the topic and its property bag.
MAX_PACKET = MAX_MESSAGE + 16 * 1024
READ_CHUNK = 16 * 1024


class ByteWriter(Protocol):
    """What a connection writes to: an asyncio StreamWriter over TLS, or the WebSocket link of
    mqtt_websocket.py."""

    transport: Any

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class MqttConnection:
    """Implements sessions.DeviceSession for one device connection."""

    def __init__(self, hub: Hub, reader: asyncio.StreamReader, writer: ByteWriter,
                 on_authenticated: Callable[[], None] = lambda: None) -> None:
        self.hub = hub
        self.authenticated = False
        self._on_authenticated = on_authenticated
        self.reader = reader
        self.writer = writer
        self.device_id = ""
        self.module_id: str | None = None
        self.identity = ""  # the device id, or {device}/{module} for a module identity
        self.subscriptions: dict[str, int] = {}
        self.clean_session = True
        self.closed = False
        self.close_reason = ""
        self._next_pid = 0
        self._inflight_out: set[int] = set()
        self._expiry_handle: asyncio.TimerHandle | None = None
        # (property bag, payload) of a Will on the device's telemetry topic: sent as telemetry
        # if the connection ends without a DISCONNECT, as IoT Hub does.
        self._will: tuple[dict[str, str | None], bytes] | None = None
        self._parser = PacketReader(MAX_PACKET)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    # --- DeviceSession ---------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int) -> int | None:
        if self.closed:
            return None
        pid = None
        if qos:
            pid = self._alloc_pid()
            self._inflight_out.add(pid)
        self._write(encode(Publish(topic, payload, 1 if qos else 0, pid)))
        return pid

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        log.info("closing %s (%s): %s", self.identity or "?", self.peer, reason)
        if self._expiry_handle is not None:
            self._expiry_handle.cancel()
        try:
            self.writer.close()
        except Exception:  # transport already gone; nothing more to release
            pass

    # --- internals -------------------------------------------------------------------------
    def _alloc_pid(self) -> int:
        for _ in range(65535):
            self._next_pid = self._next_pid % 65535 + 1
            if self._next_pid not in self._inflight_out:
                return self._next_pid
        raise RuntimeError("no free packet identifier")

    def _write(self, data: bytes) -> None:
        if not self.closed:
            self.writer.write(data)

    async def _read_packet(self, timeout: float | None) -> Any:
        """Next packet, or None on EOF/timeout. Raises MalformedPacket/PacketTooLarge."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            packet = self._parser.next_packet()
            if packet is not None:
                return packet
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                data = await asyncio.wait_for(self.reader.read(READ_CHUNK), remaining)
            except asyncio.TimeoutError:
                return None
            if not data:
                return None
            self._parser.feed(data)

    async def run(self) -> None:
        try:
            await self._serve()
        except (MalformedPacket, PacketTooLarge) as exc:
            self.close(f"protocol violation: {exc}")
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            self.close(f"connection lost: {exc.__class__.__name__}")
        except asyncio.CancelledError:
            self.close("hub shutting down")
            raise
        except Exception:  # a bug here must cost one connection, never the hub
            log.exception("connection handler failed for %s", self.identity or self.peer)
            self.close("internal error")
        finally:
            self.close(self.close_reason or "done")
            if self.device_id:
                self._send_will()
                self.hub.session_closed(self)

    def _will_of(self, connect: Connect) -> tuple[dict[str, str | None], bytes] | None:
        if connect.will_topic is None:
            return None
        try:
            telemetry = topics.parse_telemetry(connect.will_topic, self.device_id, self.module_id)
        except topics.TopicError:
            telemetry = None
        if telemetry is None:
            log.info("%s: Will on %r ignored (IoT Hub forwards only a telemetry topic)",
                     self.identity, connect.will_topic[:80])
            return None
        return telemetry.properties, connect.will_payload or b""

    def _send_will(self) -> None:
        will, self._will = self._will, None
        if will is None or self.close_reason == "hub shutting down":
            return
        bag, payload = will
        if len(payload) > MAX_MESSAGE:
            return
        self.hub.telemetry.record(self.device_id, payload, {**bag, "iothub-MessageType": "Will"},
                                  module_id=self.module_id)

    async def _serve(self) -> None:
        first = await self._read_packet(CONNECT_TIMEOUT)
        if first is None:
            self.close("no CONNECT in time")
            return
        if not isinstance(first, Connect):
            self.close("first packet was not CONNECT")
            return
        if self.hub.dps is not None and is_dps_connect(first, self.hub.names):
            await DpsLink(self, self.hub.dps).serve(first)
            return
        try:
            who = self.hub.authenticate(first)
        except ConnectRefused as exc:
            log.info("refused CONNECT from %s (client id %r): %s", self.peer,
                     first.client_id[:64], exc)
            self.writer.write(encode(Connack(False, exc.code)))
            await self._drain_quietly()
            self.close(f"CONNECT refused ({exc.code})")
            return
        self.authenticated = True
        self._on_authenticated()
        self.device_id, self.module_id, self.identity = who.device_id, who.module_id, who.identity
        self.clean_session = first.clean_session
        self._will = self._will_of(first)
        session_present = self.hub.session_opened(self, first.clean_session, who.model_id)
        self._write(encode(Connack(session_present, CONNACK_ACCEPTED)))
        loop = asyncio.get_running_loop()
        delay = max(0.0, who.token_expiry - self.hub.clock())
        self._expiry_handle = loop.call_later(delay, self.close, "SAS token expired")
        self.hub.session_ready(self)
        keepalive = first.keepalive if 0 < first.keepalive <= MAX_KEEPALIVE else MAX_KEEPALIVE
        idle_limit = keepalive * 1.5
        while not self.closed:
            packet = await self._read_packet(idle_limit)
            if packet is None:
                if not self.closed:
                    self.close("keepalive expired or peer closed")
                return
            self.hub.registry.touch(self.identity)
            self._handle(packet)
            if self.closed:
                # DISCONNECT (or a refusal) closed it: its TLS transport is gone.
                return
            if self.writer.transport.get_write_buffer_size() > 1024 * 1024:
                await self.writer.drain()

    async def _drain_quietly(self) -> None:
        try:
            await asyncio.wait_for(self.writer.drain(), 5)
        except (ConnectionError, asyncio.TimeoutError, ssl.SSLError):
            pass

    def _handle(self, packet: Any) -> None:
        if isinstance(packet, Publish):
            self._on_publish(packet)
        elif isinstance(packet, Puback):
            self._inflight_out.discard(packet.packet_id)
            self.hub.c2d.on_puback(self, packet.packet_id)
        elif isinstance(packet, Subscribe):
            self._on_subscribe(packet)
        elif isinstance(packet, Unsubscribe):
            kinds = [k for k in (topics.subscription_kind(t, self.device_id, self.module_id) for t in packet.topics) if k]
            dropped = [k for k in kinds if self.subscriptions.pop(k, None) is not None]
            self._write(encode(Unsuback(packet.packet_id)))
            if dropped:
                self.hub.subscriptions_changed(self)
        elif isinstance(packet, Pingreq):
            self._write(encode(Pingresp()))
        elif isinstance(packet, Disconnect):
            self._will = None  # a graceful end: no Will
            self.close("client disconnected")
        else:
            self.close(f"unexpected {type(packet).__name__} packet")

    def _on_subscribe(self, packet: Subscribe) -> None:
        codes = []
        added = []
        before = dict(self.subscriptions)
        for topic_filter, qos in packet.topics:
            kind = topics.subscription_kind(topic_filter, self.device_id, self.module_id)
            if kind is None or (kind not in self.subscriptions
                                and len(self.subscriptions) >= MAX_SUBSCRIPTIONS):
                codes.append(SUBACK_FAILURE)
                continue
            granted = min(qos, 1)  # IoT Hub grants QoS 1 for a QoS 2 request
            self.subscriptions[kind] = granted
            codes.append(granted)
            added.append(kind)
        self._write(encode(Suback(packet.packet_id, codes)))
        if self.subscriptions != before:  # a reconnect re-subscribing to what was kept changes nothing
            self.hub.subscriptions_changed(self)
        if topics.SUB_C2D in added:
            self.hub.c2d.deliver(self)

    def _on_publish(self, pub: Publish) -> None:
        if pub.qos == 2:
            self.close("QoS 2 is not supported by IoT Hub")
            return
        try:
            handled = self._route(pub)
        except topics.TopicError as exc:
            self.close(f"malformed topic: {exc}")
            return
        if not handled:
            self.close(f"topic outside the device's namespace: {pub.topic[:80]!r}")
            return
        if pub.qos == 1 and not self.closed and pub.packet_id is not None:
            self._write(encode(Puback(pub.packet_id)))

    def _route(self, pub: Publish) -> bool:
        telemetry = topics.parse_telemetry(pub.topic, self.device_id, self.module_id)
        if telemetry is not None:
            if len(pub.payload) > MAX_MESSAGE:
                self.close("telemetry message larger than 256 KB")
                return True
            self.hub.telemetry.record(self.device_id, pub.payload, telemetry.properties, pub.retain,
                                      self.module_id)
            return True
        twin = topics.parse_twin_request(pub.topic)
        if twin is not None:
            self._on_twin(twin, pub.payload)
            return True
        response = topics.parse_method_response(pub.topic)
        if response is not None:
            if not self.hub.methods.on_response(self.identity, response.rid, response.status,
                                                pub.payload):
                log.info("%s answered unknown or expired method request %s", self.identity,
                         response.rid[:32])
            return True
        return False

    def _twin_reply(self, status: int, rid: str, body: bytes = b"", version: int | None = None) -> None:
        qos = self.subscriptions.get(topics.SUB_TWIN_RES)
        if qos is None:
            return  # IoT Hub answers only on the subscribed response topic
        self.publish(topics.twin_response_topic(status, rid, version), body, qos)

    def _on_twin(self, req: topics.TwinRequest, payload: bytes) -> None:
        try:
            if req.kind == "GET":
                view = self.hub.twins.device_view(self.identity)
                self._twin_reply(200, req.rid, json.dumps(view, separators=(",", ":")).encode())
                return
            patch = parse_json_object(payload)
            version = self.hub.twins.patch_reported(self.identity, patch)
            self._twin_reply(204, req.rid, b"", version)
        except TwinError as exc:
            self._twin_reply(exc.status, req.rid, json.dumps({"message": str(exc)}).encode())
        except HubError as exc:
            self._twin_reply(exc.status, req.rid, json.dumps({"message": exc.message}).encode())


class MqttServer:
    def __init__(self, hub: Hub, ssl_context: ssl.SSLContext,
                 max_unauthenticated: int = MAX_UNAUTHENTICATED) -> None:
        self.hub = hub
        self.ssl_context = ssl_context
        self.server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.max_unauthenticated = max_unauthenticated
        self._unauthenticated: WaitingRoom[MqttConnection] = WaitingRoom(
            max_unauthenticated, "MQTT connections", log,
            lambda conn: conn.close("turned away: too many connections yet to send CONNECT"))

    @property
    def turned_away(self) -> int:
        return self._unauthenticated.turned_away

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(
            self._accept, host, port, ssl=self.ssl_context, ssl_handshake_timeout=10,
            reuse_address=True, limit=MAX_PACKET)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = MqttConnection(self.hub, reader, writer, lambda: self._unauthenticated.leave(conn))
        self._unauthenticated.admit(conn)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await conn.run()
        finally:
            self._unauthenticated.leave(conn)
            if task is not None:
                self._tasks.discard(task)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
