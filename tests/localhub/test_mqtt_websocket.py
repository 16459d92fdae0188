"""MQTT over WebSockets at ``wss://{hub}:443/$iothub/websocket``, with a raw WebSocket client
(aiohttp's) speaking MQTT bytes: the same CONNECT rules as on 8883, the connection counted as
authenticated once its CONNECT is accepted, anything that is not a WebSocket refused. The
official SDK's ``websockets=True`` runs the scenarios of test_sdk.py (its ``sdk_device``)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import aiohttp

from localhub.protocol.mqtt_codec import (CONNACK_ACCEPTED, CONNACK_NOT_AUTHORIZED, Connack,
                                          Connect, PacketReader, Puback, Publish, encode)
from localhub.testing import HubProcess
from localhub_rawclient import device_token

API = "api-version=2021-04-12"


class WsDevice:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.reader = PacketReader()

    async def send(self, packet) -> None:
        await self.ws.send_bytes(encode(packet))

    async def recv(self, timeout: float = 5.0):
        """Next MQTT packet, or None once the hub closed the WebSocket."""
        while (packet := self.reader.next_packet()) is None:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type != aiohttp.WSMsgType.BINARY:
                return None
            self.reader.feed(msg.data)
        return packet


def _ssl(hub: HubProcess) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(hub.ca_path))


async def _connect(session: aiohttp.ClientSession, hub: HubProcess, device_id: str,
                   token: str) -> tuple[WsDevice, Connack]:
    ws = await session.ws_connect(f"wss://{hub.host}:{hub.https_port}/$iothub/websocket",
                                  protocols=("mqtt",), ssl=_ssl(hub))
    assert ws.protocol == "mqtt"
    device = WsDevice(ws)
    await device.send(Connect(device_id, f"{hub.host}/{device_id}/?{API}", token.encode(), 60, True))
    connack = await device.recv()
    assert isinstance(connack, Connack)
    return device, connack


def test_mqtt_over_websockets_sends_telemetry_and_refuses_a_bad_token(module_hub: HubProcess) -> None:
    hub = module_hub
    hub.create_device("ws-raw")
    good = device_token(hub.hostname, "ws-raw", hub.device_key("ws-raw"))

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            device, connack = await _connect(session, hub, "ws-raw", good)
            assert connack.return_code == CONNACK_ACCEPTED
            await device.send(Publish("devices/ws-raw/messages/events/kind=ws", b"over 443", 1, 7))
            puback = await device.recv()
            assert isinstance(puback, Puback) and puback.packet_id == 7
            await device.ws.close()

            refused, connack = await _connect(session, hub, "ws-raw", good.replace("se=", "se=1"))
            assert connack.return_code == CONNACK_NOT_AUTHORIZED
            assert await refused.recv() is None  # and closed

            text, _ = await _connect(session, hub, "ws-raw", good)
            await text.ws.send_str("not MQTT")
            assert await text.recv() is None  # a text message ends the connection

    asyncio.run(scenario())
    [message] = hub.telemetry("ws-raw")
    assert message["body"] == "over 443" and message["properties"] == {"kind": "ws"}


def test_the_websocket_path_takes_only_an_upgrade(module_hub: HubProcess) -> None:
    status, _, _ = _plain_get(module_hub, "/$iothub/websocket")
    assert status == 400


def _plain_get(hub: HubProcess, path: str) -> tuple[int, str, bytes]:
    ctx = _ssl(hub)
    with socket.create_connection((hub.host, hub.https_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=hub.host) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {hub.host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode(errors="replace"), body


def test_a_websocket_device_is_not_pushed_out_by_a_flood_of_idle_sockets(tmp_path) -> None:
    with HubProcess(tmp_path / "hub", serve_args=("--max-unauthenticated", "2")) as hub:
        hub.create_device("ws-steady")
        token = device_token(hub.hostname, "ws-steady", hub.device_key("ws-steady"))

        async def scenario() -> None:
            async with aiohttp.ClientSession() as session:
                device, connack = await _connect(session, hub, "ws-steady", token)
                assert connack.return_code == CONNACK_ACCEPTED
                loop = asyncio.get_running_loop()
                idle = []
                for _ in range(4):  # twice the cap: each pushes out the longest waiting
                    raw = await loop.run_in_executor(None, _idle_tls, hub)
                    idle.append(raw)
                await asyncio.sleep(0.5)
                await device.send(Publish("devices/ws-steady/messages/events/", b"still here", 1, 3))
                assert isinstance(await device.recv(), Puback)
                for raw in idle:
                    raw.close()
                await device.ws.close()

        asyncio.run(scenario())
        assert [m["body"] for m in hub.telemetry("ws-steady")] == ["still here"]


def _idle_tls(hub: HubProcess) -> ssl.SSLSocket:
    raw = socket.create_connection((hub.host, hub.https_port), timeout=5)
    sock = _ssl(hub).wrap_socket(raw, server_hostname=hub.host)
    time.sleep(0.05)
    return sock
