"""A reader of an Event Hub-compatible endpoint, what ``localhub monitor`` streams telemetry
with: the local hub's, or an Azure IoT Hub's (its built-in endpoint's connection string), the
way azure-eventhub reads one. Qpid Proton's reactor is the AMQP client.

- The token is a SAS for ``sb://{host}/{entity}`` signed with the policy key's text, put on
  ``$cbs``; then ``$management`` READ gives the partition ids; then one receiver a partition, from
  the start of the stream or from the latest, positioned by a selector filter.
- No SASL, as azure-eventhub sends none (the CBS token is the proof); TLS with the given CA, or
  the system's trust store, checking the host name.
"""

from __future__ import annotations

import base64
import ipaddress
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote_plus, urlsplit

from proton import Message, SSLDomain
from proton.handlers import MessagingHandler
from proton.reactor import Container, Selector

from ..protocol import auth
from ..protocol.twin import iso_now
from ..storage.state import parse_connection_string

TOKEN_TTL = 3600
DEVICE_ID = "iothub-connection-device-id"


class EventHubError(RuntimeError):
    pass


@dataclass(frozen=True)
class EventHubTarget:
    host: str
    port: int
    entity: str
    policy: str
    key: str

    @classmethod
    def from_connection_string(cls, text: str) -> "EventHubTarget":
        try:
            fields = parse_connection_string(text)
            endpoint = urlsplit(fields["Endpoint"])
            target = cls(endpoint.hostname or "", endpoint.port or 5671, fields["EntityPath"],
                         fields["SharedAccessKeyName"], fields["SharedAccessKey"])
        except (KeyError, ValueError) as exc:
            raise EventHubError(f"not an Event Hub-compatible connection string: {exc}") from exc
        if not target.host:
            raise EventHubError("the connection string's Endpoint has no host")
        return target

    def token(self, now: float) -> str:
        resource = f"sb://{self.host}/{self.entity}"
        expiry = int(now) + TOKEN_TTL
        signature = auth.sign_with_key_text(self.key, quote_plus(resource), expiry)
        return (f"SharedAccessSignature sr={quote_plus(resource)}&sig={quote_plus(signature)}"
                f"&se={expiry}&skn={self.policy}")


def event_json(message: Message, partition: str) -> dict[str, Any]:
    """An event as ``localhub monitor`` prints it (the fields the hub's long poll gives)."""
    annotations = {str(k): v for k, v in (message.annotations or {}).items()}
    system: dict[str, Any] = {}
    for name, value in (("message-id", message.id), ("correlation-id", message.correlation_id),
                        ("content-type", message.content_type),
                        ("content-encoding", message.content_encoding)):
        if value:
            system[name] = str(value)
    for name in (DEVICE_ID, "iothub-connection-module-id", "iothub-message-source"):
        if annotations.get(name):
            system[name] = str(annotations[name])
    body = message.body
    if isinstance(body, memoryview):
        body = bytes(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = body or b""
    enqueued = annotations.get("x-opt-enqueued-time")
    out: dict[str, Any] = {
        "deviceId": system.get(DEVICE_ID), "partition": partition,
        "offset": str(annotations.get("x-opt-offset", "")),
        "sequenceNumber": annotations.get("x-opt-sequence-number"),
        "enqueuedTime": iso_now(enqueued / 1000.0) if isinstance(enqueued, (int, float)) else None,
        "properties": {str(k): (None if v is None else str(v)) for k, v in (message.properties or {}).items()},
        "systemProperties": system,
    }
    try:
        out["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        out["body"] = None
        out["bodyBase64"] = base64.b64encode(body).decode("ascii")
    return out


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Reader(MessagingHandler):
    def __init__(self, target: EventHubTarget, ca_path: str | None, consumer_group: str,
                 from_start: bool, on_event: Callable[[dict[str, Any]], bool], timeout: float) -> None:
        super().__init__(prefetch=100)
        self.target = target
        self.ca_path = ca_path
        self.consumer_group = consumer_group
        self.from_start = from_start
        self.on_event = on_event
        self.timeout = timeout
        self.error: str | None = None
        self.requests: dict[str, str] = {}  # message id of a $cbs / $management request -> its node
        self.senders: dict[str, Any] = {}
        self.partitions: dict[str, str] = {}  # receiver link name -> partition id
        self.connection: Any = None

    def on_start(self, event: Any) -> None:
        domain = SSLDomain(SSLDomain.MODE_CLIENT)
        if self.ca_path:
            domain.set_trusted_ca_db(self.ca_path)
        # Proton matches a peer name against DNS names only: a hub reached at an IP address
        # (every local hub) fails it. There the chain is checked against the CA given, which is
        # the hub's own (only a given CA is allowed with an IP: the system's trusts too many).
        by_address = _is_address(self.target.host)
        domain.set_peer_authentication(SSLDomain.VERIFY_PEER if by_address else SSLDomain.VERIFY_PEER_NAME)
        self.connection = event.container.connect(
            f"amqps://{self.target.host}:{self.target.port}", ssl_domain=domain, sasl_enabled=False,
            virtual_host=self.target.host, reconnect=False)
        for node in ("$cbs", "$management"):
            self.senders[node] = event.container.create_sender(self.connection, node)
            event.container.create_receiver(self.connection, node, name=f"{node}-replies")
        if self.timeout:
            event.container.schedule(self.timeout, self)
        self._request("$cbs", self.target.token(time.time()), {
            "operation": "put-token", "type": "servicebus.windows.net:sastoken",
            "name": f"sb://{self.target.host}/{self.target.entity}"})

    def _request(self, node: str, body: Any, properties: dict[str, Any]) -> None:
        request_id = str(uuid.uuid4())
        self.requests[request_id] = node
        self.senders[node].send(Message(body=body, id=request_id, reply_to=f"{node}-replies",
                                        properties=properties))

    def on_message(self, event: Any) -> None:
        msg = event.message
        partition = self.partitions.get(event.receiver.name)
        if partition is not None:
            if not self.on_event(event_json(msg, partition)):
                self.stop(event)
            return
        node = self.requests.pop(str(msg.correlation_id), None)
        status = int((msg.properties or {}).get("status-code", 0))
        if node is None:
            return
        if status not in (200, 202):
            self.error = f"{node}: {status} {(msg.properties or {}).get('status-description', '')}"
            return self.stop(event)
        if node == "$cbs":
            self._request("$management", None, {
                "operation": "READ", "name": self.target.entity, "type": "com.microsoft:eventhub",
                "security_token": self.target.token(time.time())})
        else:
            start = "-1" if self.from_start else "@latest"
            for partition_id in msg.body.get("partition_ids", []):
                address = f"{self.target.entity}/ConsumerGroups/{self.consumer_group}/Partitions/{partition_id}"
                receiver = event.container.create_receiver(
                    self.connection, address, options=Selector(f"amqp.annotation.x-opt-offset > '{start}'"))
                self.partitions[receiver.name] = str(partition_id)

    def on_timer_task(self, event: Any) -> None:
        self.stop(event)

    def on_link_error(self, event: Any) -> None:
        condition = event.link.remote_condition
        self.error = f"{condition.name}: {condition.description}" if condition else "link refused"
        self.stop(event)

    def on_transport_error(self, event: Any) -> None:
        condition = event.transport.condition
        self.error = f"{condition.name}: {condition.description}" if condition else "connection failed"
        self.stop(event)

    def stop(self, event: Any) -> None:
        if self.connection is not None:
            self.connection.close()
        event.container.stop()


def read_events(connection_string: str, on_event: Callable[[dict[str, Any]], bool], *,
                ca_path: str | None = None, consumer_group: str = "$Default", from_start: bool = False,
                timeout: float = 0) -> None:
    """Call ``on_event`` with each event (as :func:`event_json`) until it returns False or
    ``timeout`` seconds pass (0: never). Raises EventHubError on a refusal or a lost connection."""
    target = EventHubTarget.from_connection_string(connection_string)
    if _is_address(target.host) and not ca_path:
        raise EventHubError("an endpoint at an IP address needs its CA (--ca)")
    reader = _Reader(target, ca_path, consumer_group, from_start, on_event, timeout)
    Container(reader).run()
    if reader.error:
        raise EventHubError(reader.error)



