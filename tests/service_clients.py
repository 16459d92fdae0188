"""A back end's clients of a local hub, as the official SDKs reach it over AMQP, for every tier:

- uamqp, the AMQP client azure-iot-hub sends C2D with (``trust_hub_ca`` points it and msrest at
  the hub's CA), here also reading the service-bound queues (feedback, file notifications) the
  way the SDKs' feedback and notification receivers do: CBS with the policy's SAS for the hub, a
  receiver on the queue, each message settled by hand;
- azure-eventhub's EventHubConsumerClient reading a device's telemetry from the Event
  Hub-compatible endpoint (``device_events``)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import uamqp
from localhub.protocol import auth
from localhub.storage import state
from localhub.storage.store import partition_of
from localhub.testing import HubProcess

FEEDBACK = "/messages/serviceBound/feedback"
FILE_NOTIFICATIONS = "/messages/serviceBound/filenotifications"


def trust_hub_ca(monkeypatch: pytest.MonkeyPatch, hub: HubProcess) -> None:
    """uamqp trusts certifi's bundle and nothing else it can be told from azure-iot-hub, and
    msrest trusts REQUESTS_CA_BUNDLE: both are pointed at the hub's CA."""
    import uamqp.authentication.common as uamqp_auth

    monkeypatch.setattr(uamqp_auth.certifi, "where", lambda: str(hub.ca_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(hub.ca_path))


def service_auth(hub: HubProcess, policy: str = "service") -> uamqp.authentication.JWTTokenAuth:
    key = state.load_policies(hub.state_dir)[policy].key

    def get_token() -> Any:
        from azure.core.credentials import AccessToken

        expiry = int(time.time()) + 3600
        return AccessToken(auth.generate_sas(hub.hostname, key, expiry, policy), expiry)

    token_auth = uamqp.authentication.JWTTokenAuth(
        audience="https://" + hub.hostname, uri="https://" + hub.hostname, get_token=get_token,
        token_type=b"servicebus.windows.net:sastoken")
    token_auth.update_token()
    return token_auth


class QueueReceiver:
    """A receiver on one service-bound queue; settles nothing unless told."""

    def __init__(self, hub: HubProcess, source: str, policy: str = "service") -> None:
        self.client = uamqp.ReceiveClient(f"amqps://{hub.hostname}{source}",
                                          auth=service_auth(hub, policy), auto_complete=False)

    def receive(self, count: int = 1, timeout: float = 10.0) -> list[uamqp.Message]:
        """Up to ``count`` messages, waiting at most ``timeout`` seconds for them."""
        got: list[uamqp.Message] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            wait_ms = max(1, int((deadline - time.monotonic()) * 1000))
            got += self.client.receive_message_batch(max_batch_size=count - len(got), timeout=wait_ms)
        return got

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "QueueReceiver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def body_json(message: uamqp.Message) -> Any:
    return json.loads(b"".join(message.get_data()))


def receive_events(client: Any, count: int, wanted, starting_position="-1", timeout: float = 20.0,
                   started: threading.Event | None = None, inclusive: bool = False,
                   partition_id: str | None = None) -> list:
    """(partition, event) for events ``wanted`` accepts, read with azure-eventhub's consumer
    ``client`` until ``count`` came or ``timeout``; the client is closed after."""
    got: list = []
    done = threading.Event()

    def on_event(context, event) -> None:
        if event is not None and wanted(event):
            got.append((context.partition_id, event))
            if len(got) >= count:
                done.set()

    def on_partition_initialize(context) -> None:
        if started is not None:
            started.set()

    worker = threading.Thread(target=client.receive, kwargs={
        "on_event": on_event, "starting_position": starting_position, "max_wait_time": 1,
        "starting_position_inclusive": inclusive, "partition_id": partition_id,
        "on_partition_initialize": on_partition_initialize}, daemon=True)
    worker.start()
    done.wait(timeout)
    client.close()
    worker.join(10)
    return got


def consumer(hub: HubProcess, policy: str = "service") -> Any:
    """azure-eventhub's EventHubConsumerClient on the hub's Event Hub-compatible endpoint."""
    from azure.eventhub import EventHubConsumerClient

    return EventHubConsumerClient.from_connection_string(
        hub.eventhub_connection_string(policy), consumer_group="$Default",
        connection_verify=str(hub.ca_path), retry_total=0)


def device_events(hub: HubProcess, device_id: str, count: int, timeout: float = 20.0) -> list:
    """The first ``count`` events ``device_id`` sent, read from the start of its partition."""
    got = receive_events(consumer(hub), count, lambda e: e.system_properties.get(
        b"iothub-connection-device-id") == device_id.encode(), timeout=timeout,
        partition_id=str(partition_of(device_id)))
    return [event for _, event in got[:count]]
