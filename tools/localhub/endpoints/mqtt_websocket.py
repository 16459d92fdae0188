"""MQTT over WebSockets on the HTTPS port, at ``/$iothub/websocket`` (subprotocol ``mqtt``), as
IoT Hub offers it to devices behind firewalls that pass only 443 (the official SDKs'
``websockets=True``).

The upgrade itself carries no credentials: the MQTT CONNECT inside does, exactly as on 8883, and
the same :class:`endpoints.mqtt.MqttConnection` serves it. Between the two sits a link that turns
WebSocket binary messages into the byte stream the connection reads, and its writes into binary
messages, sent in order by one task.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType, web

from .mqtt import MAX_PACKET, MqttConnection
from .routing import DEVICE, HUB_KEY, add_route, vouch

PATH = "/$iothub/websocket"
_CLOSE = None  # the sender's signal that nothing more will be written


class _SendBuffer:
    """What MqttConnection asks of ``writer.transport``: how much is still to be sent."""

    def __init__(self) -> None:
        self.size = 0

    def get_write_buffer_size(self) -> int:
        return self.size


class WebSocketWriter:
    """The StreamWriter side MqttConnection uses (write, drain, close, get_extra_info)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self._ws = ws
        self._request = request
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.transport = _SendBuffer()
        self._sender = asyncio.get_running_loop().create_task(self._send())

    def write(self, data: bytes) -> None:
        self.transport.size += len(data)
        self._queue.put_nowait(bytes(data))

    async def drain(self) -> None:
        if self._sender.done():
            return
        joined = asyncio.ensure_future(self._queue.join())
        await asyncio.wait({joined, self._sender}, return_when=asyncio.FIRST_COMPLETED)
        joined.cancel()

    def close(self) -> None:
        self._queue.put_nowait(_CLOSE)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self._request.transport
        return transport.get_extra_info(name, default) if transport is not None else default

    async def wait_closed(self) -> None:
        await self._sender

    async def _send(self) -> None:
        while True:
            data = await self._queue.get()
            try:
                if data is _CLOSE:
                    await self._ws.close()
                    return
                self.transport.size -= len(data)
                await self._ws.send_bytes(data)
            except (ConnectionError, RuntimeError):
                pass  # the peer is gone: MqttConnection learns it from the read side
            finally:
                self._queue.task_done()


async def _pump(ws: web.WebSocketResponse, reader: asyncio.StreamReader) -> None:
    """WebSocket binary messages into ``reader``, EOF when the socket closes or breaks the rules
    (a text message is not MQTT)."""
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                reader.feed_data(msg.data)
            else:
                break
    finally:
        reader.feed_eof()


async def mqtt_over_websocket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=("mqtt",), max_msg_size=MAX_PACKET, autoping=True)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(reason="MQTT over WebSockets needs a WebSocket upgrade")
    await ws.prepare(request)
    reader = asyncio.StreamReader(limit=MAX_PACKET)
    writer = WebSocketWriter(ws, request)
    pump = asyncio.get_running_loop().create_task(_pump(ws, reader))
    conn = MqttConnection(request.app[HUB_KEY], reader, writer,
                          on_authenticated=lambda: vouch(request))
    try:
        await conn.run()
    finally:
        writer.close()
        await writer.wait_closed()
        pump.cancel()
    return ws


def setup(app: web.Application) -> None:
    add_route(app, "GET", PATH, mqtt_over_websocket, DEVICE)
