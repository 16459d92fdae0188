"""The Event Hub-compatible endpoint with the official azure-eventhub client, unchanged: it reads
the telemetry official devices send, from the start of the stream and from the latest, with
IoT Hub's annotations and properties; a token without ServiceConnect is refused."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from azure.eventhub import EventHubConsumerClient
from azure.eventhub.exceptions import AuthenticationError
from azure.iot.device import IoTHubDeviceClient, Message
from localhub.storage.store import partition_of
from localhub.testing import HubProcess
from service_clients import consumer, receive_events

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _device(hub: HubProcess, device_id: str) -> IoTHubDeviceClient:
    cs = hub.create_device(device_id)
    client = IoTHubDeviceClient.create_from_connection_string(
        hub.sdk_connection_string(cs), server_verification_cert=hub.ca_pem)
    client.connect()
    return client


def test_the_official_consumer_reads_device_telemetry_with_iot_hubs_annotations(module_hub: HubProcess) -> None:
    hub = module_hub
    senders = {name: _device(hub, name) for name in ("eh-a", "eh-b", "eh-c")}
    try:
        for name, client in senders.items():
            for n in range(3):
                msg = Message(f'{{"n": {n}}}', message_id=f"{name}-{n}", content_type="application/json",
                              content_encoding="utf-8")
                msg.custom_properties["kind"] = "reading"
                client.send_message(msg)
    finally:
        for client in senders.values():
            client.shutdown()
    client = consumer(hub)
    properties = client.get_eventhub_properties()
    assert properties["eventhub_name"] == "localhub" and properties["partition_ids"] == ["0", "1", "2", "3"]
    got = receive_events(consumer(hub), 9, lambda e: e.system_properties.get(b"iothub-connection-device-id", b"").startswith(b"eh-"))
    assert len(got) == 9
    by_device: dict[str, list] = {}
    for partition, event in got:
        device = event.system_properties[b"iothub-connection-device-id"].decode()
        by_device.setdefault(device, []).append((partition, event))
    for device, events in by_device.items():
        assert len({p for p, _ in events}) == 1, "a device's telemetry stays in one partition"
        assert [e.body_as_json()["n"] for _, e in events] == [0, 1, 2], "in the order sent"
        numbers = [e.sequence_number for _, e in events]
        assert numbers == sorted(numbers) and len(set(numbers)) == 3
        first = events[0][1]
        assert first.properties == {b"kind": b"reading"}
        assert first.system_properties[b"message-id"] == f"{device}-0".encode()
        assert first.system_properties[b"content-type"] == b"application/json"
        assert first.system_properties[b"iothub-message-source"] == b"Telemetry"
        assert abs(first.enqueued_time.timestamp() - time.time()) < 60
    partition, last = got[-1]
    info = consumer(hub).get_partition_properties(partition)
    assert info["last_enqueued_sequence_number"] >= last.sequence_number
    assert int(info["last_enqueued_offset"]) >= int(last.offset)


def test_reading_from_latest_sees_only_what_is_sent_after(module_hub: HubProcess) -> None:
    hub = module_hub
    device = _device(hub, "eh-late")
    try:
        device.send_message(Message("before"))
        time.sleep(0.3)
        started = threading.Event()
        result: list = []

        def read() -> None:
            result.extend(receive_events(consumer(hub), 1, lambda e: e.system_properties.get(
                b"iothub-connection-device-id") == b"eh-late", "@latest", 20, started))

        reader = threading.Thread(target=read)
        reader.start()
        assert started.wait(15)
        time.sleep(1.0)  # every partition's receiver attached
        device.send_message(Message("after"))
        reader.join(30)
    finally:
        device.shutdown()
    assert [e.body_as_str() for _, e in result] == ["after"]


@pytest.mark.parametrize("policy", ["registryRead", "device"])
def test_a_policy_without_service_connect_is_refused(module_hub: HubProcess, policy: str) -> None:
    with pytest.raises(AuthenticationError) as refused:
        consumer(module_hub, policy).get_eventhub_properties()
    assert "does not grant ServiceConnect" in str(refused.value), refused.value


def test_the_cli_prints_the_event_hub_compatible_connection_string(module_hub: HubProcess) -> None:
    from click.testing import CliRunner
    from localhub.cli.main import main

    result = CliRunner().invoke(main, ["--state", str(module_hub.state_dir), "eventhub",
                                       "connection-string"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = result.output.strip()
    assert text == module_hub.eventhub_connection_string("service")
    assert text.startswith(f"Endpoint=sb://{module_hub.host}/;SharedAccessKeyName=service;")
    assert text.endswith(";EntityPath=localhub")


def test_a_reader_resumes_at_its_offset_across_a_hub_restart_with_no_loss_and_no_duplicate(tmp_path) -> None:
    with HubProcess(tmp_path / "hub") as hub:
        device = _device(hub, "eh-restart")
        try:
            for n in range(3):
                device.send_message(Message(f"m{n}"))
        finally:
            device.shutdown()
        def mine(event) -> bool:
            return event.system_properties.get(b"iothub-connection-device-id") == b"eh-restart"

        first = receive_events(consumer(hub), 3, mine)
        assert [e.body_as_str() for _, e in first] == ["m0", "m1", "m2"]
        partition, last = first[-1]
        hub.stop()
        hub.start()
        device = _device_again(hub, "eh-restart")
        try:
            for n in range(3, 5):
                device.send_message(Message(f"m{n}"))
        finally:
            device.shutdown()
        resumed = receive_events(consumer(hub), 2, mine, starting_position=last.offset,
                           partition_id=partition)
        assert [e.body_as_str() for _, e in resumed] == ["m3", "m4"]
        assert {p for p, _ in resumed} == {partition}
        assert [e.sequence_number for _, e in resumed] == [last.sequence_number + 1, last.sequence_number + 2]
        # a sequence number is exclusive unless the reader asks for it inclusive
        after_number = receive_events(consumer(hub), 2, mine, starting_position=last.sequence_number,
                                partition_id=partition)
        assert [e.body_as_str() for _, e in after_number] == ["m3", "m4"]
        from_number = receive_events(consumer(hub), 2, mine, starting_position=last.sequence_number + 1,
                               inclusive=True, partition_id=partition)
        assert [e.body_as_str() for _, e in from_number] == ["m3", "m4"]


def _device_again(hub: HubProcess, device_id: str) -> IoTHubDeviceClient:
    from localhub.storage import state

    cs = state.device_connection_string(hub.host, device_id, hub.device_key(device_id))
    client = IoTHubDeviceClient.create_from_connection_string(
        hub.sdk_connection_string(cs), server_verification_cert=hub.ca_pem)
    client.connect()
    return client


def test_consumer_groups_read_the_same_events_each_at_its_own_place(module_hub: HubProcess) -> None:
    from click.testing import CliRunner
    from localhub.cli.main import main

    def cli(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--state", str(module_hub.state_dir), "eventhub",
                                           "consumer-group", *args])
        return result.exit_code, result.output

    assert cli("create", "reporting") == (0, "created reporting\n")
    assert cli("create", "Reporting")[0] != 0  # names are case-insensitive, as in Event Hubs
    assert cli("create", "-bad")[0] != 0
    assert cli("list")[1].split() == ["$Default", "reporting"]
    device = _device(module_hub, "eh-groups")
    try:
        device.send_message(Message("for both"))
    finally:
        device.shutdown()

    def mine(event) -> bool:
        return event.system_properties.get(b"iothub-connection-device-id") == b"eh-groups"

    for group in ("$Default", "reporting"):
        client = EventHubConsumerClient.from_connection_string(
            module_hub.eventhub_connection_string(), consumer_group=group,
            connection_verify=str(module_hub.ca_path), retry_total=0)
        got = receive_events(client, 1, mine, partition_id=str(partition_of("eh-groups")))
        assert [e.body_as_str() for _, e in got] == ["for both"], group

    errors: list = []
    unknown = EventHubConsumerClient.from_connection_string(
        module_hub.eventhub_connection_string(), consumer_group="nope",
        connection_verify=str(module_hub.ca_path), retry_total=0)
    worker = threading.Thread(target=unknown.receive, kwargs={
        "on_event": lambda c, e: None, "on_error": lambda c, err: errors.append(err),
        "partition_id": "0", "starting_position": "-1"}, daemon=True)
    worker.start()
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        time.sleep(0.1)
    unknown.close()
    worker.join(10)
    assert errors and "nope" in str(errors[0])
    assert cli("delete", "reporting") == (0, "deleted reporting\n")
    assert cli("delete", "$Default")[0] != 0


def _monitor(hub: HubProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "localhub", "--state", str(hub.state_dir), "monitor", *args],
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(TOOLS), "PATH": ""})


def test_localhub_monitor_reads_through_the_event_hub_endpoint_what_the_official_consumer_reads(
        module_hub: HubProcess) -> None:
    hub = module_hub
    device = _device(hub, "eh-monitored")
    try:
        for n in range(3):
            device.send_message(Message(f'{{"n": {n}}}', message_id=f"mon-{n}"))
    finally:
        device.shutdown()
    out = _monitor(hub, "--device", "eh-monitored", "--from-start", "--count", "3", "--timeout", "30")
    assert out.returncode == 0, out.stderr
    printed = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert [p["body"] for p in printed] == ['{"n": 0}', '{"n": 1}', '{"n": 2}']
    assert {p["partition"] for p in printed} == {str(partition_of("eh-monitored"))}
    assert [p["systemProperties"]["message-id"] for p in printed] == ["mon-0", "mon-1", "mon-2"]
    got = receive_events(consumer(hub), 3, lambda e: e.system_properties.get(
        b"iothub-connection-device-id") == b"eh-monitored", partition_id=str(partition_of("eh-monitored")))
    assert [(p["offset"], p["sequenceNumber"]) for p in printed] == [
        (e.offset, e.sequence_number) for _, e in got], "the same events, at the same places"

    refused = _monitor(hub, "--consumer-group", "nobody-made-this", "--timeout", "20")
    assert refused.returncode == 1 and "amqp:not-found" in refused.stderr and "nobody-made-this" in refused.stderr
    malformed = _monitor(hub, "--eventhub", "Endpoint=sb://somewhere/;SharedAccessKeyName=x")
    assert malformed.returncode == 1 and "not an Event Hub-compatible connection string" in malformed.stderr


def test_twin_changes_reach_the_endpoint_only_once_routed(module_hub: HubProcess, tmp_path) -> None:
    def twin_events(hub: HubProcess, device_id: str, count: int, timeout: float) -> list:
        return [e for _, e in receive_events(consumer(hub), count, lambda e: e.system_properties.get(
            b"iothub-connection-device-id") == device_id.encode() and e.system_properties.get(
            b"iothub-message-source") == b"twinChangeEvents", timeout=timeout,
            partition_id=str(partition_of(device_id)))]

    with HubProcess(tmp_path / "routed", serve_args=("--route", "twinChangeEvents")) as hub:
        device = _device(hub, "eh-twin")
        try:
            device.patch_twin_reported_properties({"firmware": "1.2", "led": None})
            hub.update_twin("eh-twin", {"tags": {"room": "lab"}, "properties": {"desired": {"rate": 5}}})
            events = twin_events(hub, "eh-twin", 2, 20)
        finally:
            device.shutdown()
    assert [e.properties[b"opType"] for e in events] == [b"updateTwin", b"updateTwin"]
    assert all(e.properties[b"iothub-message-schema"] == b"twinChangeNotification"
               and e.properties[b"deviceId"] == b"eh-twin" and e.properties[b"hubName"] == b"localhub"
               for e in events)
    reported, desired = (e.body_as_json() for e in events)
    assert {k: v for k, v in reported["properties"]["reported"].items() if not k.startswith("$")} == {
        "firmware": "1.2", "led": None}
    assert reported["properties"]["reported"]["$version"] == 2
    assert desired["tags"] == {"room": "lab"} and desired["properties"]["desired"]["rate"] == 5
    assert desired["version"] > reported["version"]
    assert events[0].system_properties[b"content-type"] == b"application/json"

    # no route, no twin change events (IoT Hub's default)
    device = _device(module_hub, "eh-twin-unrouted")
    try:
        device.patch_twin_reported_properties({"firmware": "1.2"})
    finally:
        device.shutdown()
    assert twin_events(module_hub, "eh-twin-unrouted", 1, 3) == []
