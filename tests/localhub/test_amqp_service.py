"""IoT Hub's service AMQP endpoint with the official clients: C2D sent with azure-iot-hub's
``send_c2d_message`` (uamqp: SASL MSSBCBS, CBS, a sender on /messages/devicebound) and received
by azure-iot-device over MQTT; its feedback and file upload notifications read from their
queues with uamqp, as the SDKs' receivers do, and settled by hand."""

from __future__ import annotations

import time
import uuid

import pytest
import uamqp
from service_clients import FEEDBACK, FILE_NOTIFICATIONS, QueueReceiver, body_json, trust_hub_ca
from azure.iot.device import IoTHubDeviceClient
from azure.iot.hub import IoTHubRegistryManager
from azure.storage.blob import BlobClient
from localhub.testing import HubProcess


@pytest.fixture
def registry(module_hub: HubProcess, monkeypatch: pytest.MonkeyPatch):
    trust_hub_ca(monkeypatch, module_hub)
    manager = IoTHubRegistryManager.from_connection_string(module_hub.service_connection_string)
    yield manager
    manager.amqp_svc_client.disconnect_sync()


def _device(hub: HubProcess, device_id: str) -> IoTHubDeviceClient:
    client = IoTHubDeviceClient.create_from_connection_string(
        hub.sdk_connection_string(hub.create_device(device_id)), server_verification_cert=hub.ca_pem)
    client.connect()
    return client


def _feedback_records(receiver: QueueReceiver, count: int, timeout: float = 15.0) -> list[dict]:
    records: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        for message in receiver.receive(1, max(0.1, deadline - time.monotonic())):
            assert message.properties.content_type == b"application/vnd.microsoft.iothub.feedback.json"
            records += body_json(message)
            message.accept()
    return records


def test_send_c2d_message_reaches_the_device_and_its_feedback_says_success(
        module_hub: HubProcess, registry: IoTHubRegistryManager) -> None:
    device_id = "amqp-c2d-ok"
    device = _device(module_hub, device_id)
    try:
        message_id = str(uuid.uuid4())
        registry.send_c2d_message(device_id, '{"led": "on"}', properties={
            "messageId": message_id, "contentType": "application/json", "correlationId": "c-7",
            "iothub-ack": "full", "room": "kitchen & hall"})
        received = device.receive_message(timeout=15)
        assert received is not None
        assert received.data == b'{"led": "on"}'
        assert received.message_id == message_id and received.correlation_id == "c-7"
        assert received.content_type == "application/json"
        assert received.custom_properties["room"] == "kitchen & hall"
        registry.send_c2d_message(device_id, "no feedback wanted", properties={"iothub-ack": "none"})
        assert device.receive_message(timeout=15).data == b"no feedback wanted"
    finally:
        device.shutdown()
    generation = registry.get_device(device_id).generation_id
    with QueueReceiver(module_hub, FEEDBACK) as receiver:
        records = _feedback_records(receiver, 1)
        assert [(r["originalMessageId"], r["statusCode"], r["description"], r["deviceId"],
                 r["deviceGenerationId"]) for r in records] == [
            (message_id, "Success", "Success", device_id, generation)]
        assert records[0]["enqueuedTimeUtc"].endswith("Z")
        assert receiver.receive(1, 1.0) == []  # accepted: gone, and the ack=none message left none


def test_refusals_reach_the_sender_and_queue_nothing(module_hub: HubProcess,
                                                     registry: IoTHubRegistryManager,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    device_id = "amqp-c2d-refused"
    module_hub.create_device(device_id)
    with pytest.raises(Exception, match="C2D message send failure"):
        registry.send_c2d_message("nobody-here", "x")
    with pytest.raises(Exception, match="C2D message send failure"):
        registry.send_c2d_message(device_id, "x" * (64 * 1024 + 1))
    with pytest.raises(Exception, match="C2D message send failure"):
        registry.send_c2d_message(device_id, "x", properties={"iothub-ack": "sometimes"})
    for n in range(50):
        registry.send_c2d_message(device_id, f"m{n}")
    with pytest.raises(Exception, match="C2D message send failure"):
        registry.send_c2d_message(device_id, "the 51st")
    assert registry.get_device(device_id).cloud_to_device_message_count == 50
    log = module_hub.log_path.read_text()
    for reason in ("Device 'nobody-here' not registered", "C2D message body exceeds 64 KB",
                   "iothub-ack must be none, positive, negative or full",
                   f"device '{device_id}' already has 50 pending messages"):
        assert f"C2D refused: {reason}" in log

    # registryRead has no ServiceConnect: its token is refused on $cbs, nothing is sent
    reader = IoTHubRegistryManager.from_connection_string(module_hub.policy_connection_string("registryRead"))
    try:
        with pytest.raises(Exception):
            reader.send_c2d_message(device_id, "not allowed")
    finally:
        reader.amqp_svc_client.disconnect_sync()
    assert "CBS token refused: policy registryRead does not grant ServiceConnect" in module_hub.log_path.read_text()
    assert registry.get_device(device_id).cloud_to_device_message_count == 50


def test_an_expired_message_leaves_expired_feedback_and_unsettled_feedback_survives_a_restart(
        hub: HubProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    trust_hub_ca(monkeypatch, hub)
    registry = IoTHubRegistryManager.from_connection_string(hub.service_connection_string)
    device_id = "amqp-c2d-expires"
    hub.create_device(device_id)
    try:
        soon = int((time.time() + 1) * 1000)
        registry.send_c2d_message(device_id, "too late", properties={
            "messageId": "late-1", "iothub-ack": "negative", "expiryTimeUtc": soon})
        registry.send_c2d_message(device_id, "too late too", properties={
            "messageId": "late-2", "iothub-ack": "positive", "expiryTimeUtc": soon})
    finally:
        registry.amqp_svc_client.disconnect_sync()
    with QueueReceiver(hub, FEEDBACK) as receiver:
        first = receiver.receive(1, 15.0)
        assert len(first) == 1
        assert [(r["originalMessageId"], r["statusCode"]) for r in body_json(first[0])] == [
            ("late-1", "Expired")]  # positive asks for nothing when a message expires
        first[0].release()  # abandoned: handed out again
        again = receiver.receive(1, 10.0)
        assert [r["originalMessageId"] for r in body_json(again[0])] == ["late-1"]
        # neither completed: the connection closes and the hub restarts, the feedback stays
    hub.stop()
    hub.start()
    with QueueReceiver(hub, FEEDBACK) as receiver:
        records = _feedback_records(receiver, 1)
        assert [(r["originalMessageId"], r["statusCode"]) for r in records] == [("late-1", "Expired")]
        assert receiver.receive(1, 1.0) == []
    assert hub.client.get_device(device_id)["cloudToDeviceMessageCount"] == 0


def test_a_finished_upload_is_notified_on_the_file_notification_queue(
        module_hub: HubProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    trust_hub_ca(monkeypatch, module_hub)
    device_id = "amqp-upload"
    device = _device(module_hub, device_id)
    data = b"reading,1\n" * 2000
    try:
        for name, success in (("day 1.csv", True), ("broken.csv", False)):
            info = device.get_storage_info_for_blob(name)
            sas_url = "https://{}/{}/{}{}".format(info["hostName"], info["containerName"],
                                                  info["blobName"], info["sasToken"])
            if success:
                with BlobClient.from_blob_url(sas_url) as blob_client:
                    blob_client.upload_blob(data)
            device.notify_blob_upload_status(info["correlationId"], success, 201 if success else 500,
                                             "done" if success else "failed")
    finally:
        device.shutdown()
    with QueueReceiver(module_hub, FILE_NOTIFICATIONS) as receiver:
        got = receiver.receive(1, 10.0)
        assert len(got) == 1
        note = body_json(got[0])
        got[0].accept()
        assert receiver.receive(1, 1.0) == []  # IoT Hub notifies successful uploads only
    assert set(note) == {"deviceId", "blobUri", "blobName", "lastUpdatedTime", "blobSizeInBytes",
                         "enqueuedTimeUtc"}
    assert note["deviceId"] == device_id and note["blobName"] == f"{device_id}/day 1.csv"
    assert note["blobSizeInBytes"] == len(data)
    assert module_hub.read_blob(note["blobName"]) == data
    assert note["blobUri"] == sas_url.split("?")[0].replace("broken.csv", "day%201.csv")


def test_a_malformed_c2d_message_is_rejected_with_its_reason(module_hub: HubProcess,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from service_clients import service_auth

    trust_hub_ca(monkeypatch, module_hub)
    module_hub.create_device("amqp-bad-to")
    sender = uamqp.SendClient(f"amqps://{module_hub.hostname}/messages/devicebound",
                              auth=service_auth(module_hub))
    try:
        for to in ("/devices/amqp-bad-to/modules/m1/messages/devicebound", "/somewhere/else", None):
            props = uamqp.message.MessageProperties(message_id="bad", to=to)
            message = uamqp.Message(b"x", properties=props)
            sender.queue_message(message)
            results = sender.send_all_messages(close_on_done=False)
            assert results == [uamqp.constants.MessageState.SendFailed], to
    finally:
        sender.close()
    assert module_hub.client.get_device("amqp-bad-to")["cloudToDeviceMessageCount"] == 0
    log = module_hub.log_path.read_text()
    assert "C2D refused: modules receive no cloud-to-device messages" in log
    assert "C2D refused: 'to' must be /devices/{deviceId}/messages/devicebound" in log
