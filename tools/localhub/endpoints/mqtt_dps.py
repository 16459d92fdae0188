"""DPS over MQTT, on the hub's MQTT listener: a CONNECT whose user name is
``{idScope}/registrations/{registrationId}/...`` is a provisioning client, served here, not a
device session (services/dps.py has the rules).

Topics, as DPS speaks them: the client subscribes ``$dps/registrations/res/#``, publishes
``$dps/registrations/PUT/iotdps-register/?$rid={rid}`` (body: ``{"registrationId", "payload"}``)
and polls ``$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={id}``;
each answer comes on ``$dps/registrations/res/{status}/?$rid={rid}&retry-after={s}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..protocol.mqtt_codec import (
    CONNACK_ACCEPTED,
    SUBACK_FAILURE,
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Suback,
    Subscribe,
    encode,
)
from ..protocol.auth import host_matches
from ..protocol.topics import decode_property_bag
from ..services.dps import RETRY_AFTER, DpsService, RegistrationRefused

log = logging.getLogger("localhub.dps")

RESPONSES = "$dps/registrations/res/#"
REGISTER = "$dps/registrations/PUT/iotdps-register/"
POLL = "$dps/registrations/GET/iotdps-get-operationstatus/"
CONNACK_NOT_AUTHORIZED = 5
MAX_KEEPALIVE = 1177  # seconds, as the hub
IDLE = 240.0


def is_dps_connect(connect: Connect, hub_names: frozenset[str]) -> bool:
    """A provisioning client's CONNECT: ``{idScope}/registrations/...``, where a device's user
    name starts with the hub's host (a device may be called "registrations")."""
    parts = (connect.username or "").split("/")
    return len(parts) >= 3 and parts[1] == "registrations" and not host_matches(parts[0], hub_names)


class DpsLink:
    """One provisioning client on an MQTT connection (``conn``: the hub's MqttConnection, for
    its packet reading and writing)."""

    def __init__(self, conn: Any, dps: DpsService) -> None:
        self.conn = conn
        self.dps = dps
        self.registration_id = ""
        self.enrollment = ""
        self.subscribed = False

    async def serve(self, connect: Connect) -> None:
        conn = self.conn
        try:
            self.registration_id, self.enrollment = self.dps.authenticate(
                connect.client_id, connect.username, connect.password)
        except RegistrationRefused as exc:
            log.info("refused DPS CONNECT (registration %r): %s", connect.client_id[:64], exc)
            conn.writer.write(encode(Connack(False, CONNACK_NOT_AUTHORIZED)))
            await conn._drain_quietly()
            conn.close(f"DPS CONNECT refused: {exc}")
            return
        conn.authenticated = True
        conn._on_authenticated()
        conn._write(encode(Connack(False, CONNACK_ACCEPTED)))
        keepalive = connect.keepalive if 0 < connect.keepalive <= MAX_KEEPALIVE else IDLE
        while not conn.closed:
            packet = await conn._read_packet(keepalive * 1.5)
            if packet is None:
                conn.close("keepalive expired or peer closed")
                return
            if isinstance(packet, Subscribe):
                codes = []
                for topic, qos in packet.topics:
                    ok = topic == RESPONSES
                    self.subscribed = self.subscribed or ok
                    codes.append(min(qos, 1) if ok else SUBACK_FAILURE)
                conn._write(encode(Suback(packet.packet_id, codes)))
            elif isinstance(packet, Publish):
                if packet.qos == 1 and packet.packet_id is not None:
                    conn._write(encode(Puback(packet.packet_id)))
                self._request(packet)
            elif isinstance(packet, Pingreq):
                conn._write(encode(Pingresp()))
            elif isinstance(packet, Disconnect):
                conn.close("client disconnected")
            elif not isinstance(packet, Puback):
                conn.close(f"unexpected {type(packet).__name__} packet")

    def _request(self, packet: Publish) -> None:
        topic, _, query = packet.topic.partition("?")
        params = decode_property_bag(query)
        rid = params.get("$rid") or ""
        if topic == REGISTER:
            try:
                body = json.loads(packet.payload or b"{}")
            except ValueError:
                return self._answer(400, rid, {"errorCode": 400004, "message": "malformed JSON"})
            if not isinstance(body, dict) or body.get("registrationId", self.registration_id) != self.registration_id:
                return self._answer(400, rid, {"errorCode": 400004,
                                               "message": "registrationId must be the one connected"})
            try:
                answer = self.dps.register(self.registration_id, self.enrollment, body.get("payload"))
            except RegistrationRefused as exc:
                return self._answer(401, rid, {"errorCode": 401002, "message": str(exc)})
            log.info("registration %s: assigning", self.registration_id)
            return self._answer(202, rid, answer, RETRY_AFTER)
        if topic == POLL:
            status, answer = self.dps.operation_status(self.registration_id, params.get("operationId") or "")
            return self._answer(status, rid, answer, RETRY_AFTER if status == 202 else None)
        self._answer(404, rid, {"errorCode": 404000, "message": f"unknown request {topic[:80]!r}"})

    def _answer(self, status: int, rid: str, body: dict[str, Any], retry_after: int | None = None) -> None:
        topic = f"$dps/registrations/res/{status}/?$rid={rid}"
        if retry_after is not None:
            topic += f"&retry-after={retry_after}"
        if self.subscribed:
            self.conn.publish(topic, json.dumps(body).encode("utf-8"), 0)
