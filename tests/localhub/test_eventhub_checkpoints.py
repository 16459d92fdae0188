"""Checkpoints of the Event Hub-compatible endpoint, kept where back ends keep them: blob storage
(azure-eventhub-checkpointstoreblob and its aio twin, on the Azurite the hub runs), with the
official consumer clients, sync and async, load balancing partitions through ownership blobs.

A reader that checkpoints each event and stops, then a new reader in the same consumer group:
the new one starts where the checkpoints say, so nothing is read twice and nothing is lost."""

from __future__ import annotations

import asyncio
import threading

from azure.eventhub import EventHubConsumerClient
from azure.eventhub.aio import EventHubConsumerClient as AsyncConsumerClient
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore as AsyncCheckpointStore
from azure.iot.device import IoTHubDeviceClient, Message
from localhub.storage.store import partition_of
from localhub.testing import HubProcess

CONTAINER = "eventhub-checkpoints"
_connection_strings: dict[str, str] = {}


def _send(hub: HubProcess, device_id: str, bodies: list[str]) -> None:
    """The official device SDK sends ``bodies`` as ``device_id`` (created on first use)."""
    if device_id not in _connection_strings:
        _connection_strings[device_id] = hub.sdk_connection_string(hub.create_device(device_id))
    device = IoTHubDeviceClient.create_from_connection_string(
        _connection_strings[device_id], server_verification_cert=hub.ca_pem)
    device.connect()
    try:
        for body in bodies:
            device.send_message(Message(body))
    finally:
        device.shutdown()


def _storage(hub: HubProcess) -> str:
    service = hub.blob_service_client()
    if not service.get_container_client(CONTAINER).exists():
        service.create_container(CONTAINER)
    return hub.storage_info()["connectionString"]


def _read_with_checkpoints(hub: HubProcess, store: BlobCheckpointStore, device_id: str,
                           count: int, timeout: float = 30.0) -> list[str]:
    """Bodies of ``device_id``'s events until ``count`` came, each checkpointed when read."""
    got: list[str] = []
    done = threading.Event()
    client = EventHubConsumerClient.from_connection_string(
        hub.eventhub_connection_string(), consumer_group="$Default", checkpoint_store=store,
        connection_verify=str(hub.ca_path), load_balancing_strategy="greedy",
        load_balancing_interval=1)

    def on_event(context, event) -> None:
        if event is None:
            return
        if event.system_properties.get(b"iothub-connection-device-id") == device_id.encode():
            got.append(event.body_as_str())
        context.update_checkpoint(event)
        if len(got) >= count:
            done.set()

    worker = threading.Thread(target=client.receive, kwargs={
        "on_event": on_event, "starting_position": "-1", "max_wait_time": 1}, daemon=True)
    worker.start()
    done.wait(timeout)
    client.close()
    worker.join(15)
    return got


def test_a_new_reader_resumes_at_the_blob_checkpoints_with_no_loss_and_no_duplicate(module_hub: HubProcess) -> None:
    hub = module_hub
    device_id = "eh-checkpointed"
    store = BlobCheckpointStore.from_connection_string(_storage(hub), CONTAINER,
                                                       connection_verify=str(hub.ca_path))
    _send(hub, device_id, [f"first-{n}" for n in range(5)])
    assert _read_with_checkpoints(hub, store, device_id, 5) == [f"first-{n}" for n in range(5)]
    _send(hub, device_id, [f"second-{n}" for n in range(3)])
    assert _read_with_checkpoints(hub, store, device_id, 3) == [f"second-{n}" for n in range(3)]

    # the checkpoint and ownership blobs are in Azurite, as the store writes them
    namespace = hub.host.lower()
    checkpoints = {c["partition_id"]: c for c in store.list_checkpoints(namespace, "localhub", "$Default")}
    mine = checkpoints[str(partition_of(device_id))]
    assert mine["sequence_number"] >= 7 and int(mine["offset"]) > 0
    owners = store.list_ownership(namespace, "localhub", "$Default")
    assert sorted(o["partition_id"] for o in owners) == ["0", "1", "2", "3"]
    names = [b.name for b in hub.blob_service_client().get_container_client(CONTAINER).list_blobs()]
    assert f"{namespace}/localhub/$default/checkpoint/{partition_of(device_id)}" in names


def test_the_async_consumer_with_the_aio_checkpoint_store(module_hub: HubProcess) -> None:
    hub = module_hub
    device_id = "eh-async"
    connection_string = _storage(hub)
    _send(hub, device_id, [f"a-{n}" for n in range(4)])

    async def read(count: int) -> list[str]:
        store = AsyncCheckpointStore.from_connection_string(connection_string, CONTAINER,
                                                            connection_verify=str(hub.ca_path))
        client = AsyncConsumerClient.from_connection_string(
            hub.eventhub_connection_string(), consumer_group="$Default", checkpoint_store=store,
            connection_verify=str(hub.ca_path), load_balancing_strategy="greedy",
            load_balancing_interval=1)
        got: list[str] = []
        done = asyncio.Event()

        async def on_event(context, event) -> None:
            if event is None:
                return
            if event.system_properties.get(b"iothub-connection-device-id") == device_id.encode():
                got.append(event.body_as_str())
            await context.update_checkpoint(event)
            if len(got) >= count:
                done.set()

        async with client:
            task = asyncio.create_task(client.receive(on_event, starting_position="-1", max_wait_time=1))
            try:
                await asyncio.wait_for(done.wait(), 30)
            finally:
                await client.close()
                await asyncio.wait_for(task, 15)
        await store.close()
        return got

    assert asyncio.run(read(4)) == [f"a-{n}" for n in range(4)]
    _send(hub, device_id, ["a-4"])
    assert asyncio.run(read(1)) == ["a-4"]
