"""Persistent sessions as IoT Hub keeps them, proven with the official device SDK.

azure-iot-device connects with clean session 0 and, once it has subscribed (when a handler is
set), never subscribes again after a reconnect, as MQTT 3.1.1 allows: the hub keeps the
subscriptions. After the SDK's own SAS renewal, a disconnect/connect and a hub restart, a method
is answered, a desired patch arrives and get_twin() returns.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable

import pytest
from azure.iot.device import IoTHubDeviceClient, MethodResponse
from localhub.testing import HubProcess


class Device:
    """An SDK device client with a method handler and a desired-patch handler set once."""

    def __init__(self, hub: HubProcess, device_id: str, **kw: Any) -> None:
        self.hub = hub
        self.device_id = device_id
        cs = hub.create_device(device_id)
        self.client = IoTHubDeviceClient.create_from_connection_string(
            hub.sdk_connection_string(cs), server_verification_cert=hub.ca_pem, **kw)
        self.patches: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client.on_method_request_received = self._answer
        self.client.on_twin_desired_properties_patch_received = self.patches.put
        self.client.connect()

    def _answer(self, request: Any) -> None:
        self.client.send_method_response(MethodResponse.create_from_method_request(
            request, 200, {"echo": request.payload}))

    def connected_at(self) -> str:
        return self.hub.client.get_device(self.device_id)["connectionStateUpdatedTime"]

    def still_served(self, tag: str) -> None:
        answer = self.hub.invoke_method(self.device_id, "ping", {"tag": tag}, 15)
        assert answer["status"] == 200 and answer["payload"] == {"echo": {"tag": tag}}
        self.hub.update_twin(self.device_id, {"properties": {"desired": {"tag": tag}}})
        assert self.patches.get(timeout=15)["tag"] == tag
        box: list[dict[str, Any]] = []
        getter = threading.Thread(target=lambda: box.append(self.client.get_twin()), daemon=True)
        getter.start()
        getter.join(15)  # without its response subscription the SDK waits for ever
        assert box and box[0]["desired"]["tag"] == tag


def _wait(what: str, cond: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.2)


@pytest.fixture
def hub(tmp_path):
    with HubProcess(tmp_path / "hub") as proc:
        yield proc


def test_subscriptions_survive_the_sdks_own_token_renewal(hub: HubProcess) -> None:
    # The SDK renews 120 s before expiry by reconnecting: with a 125 s token, after 5 s.
    device = Device(hub, "sdk-renewal", sastoken_ttl=125)
    try:
        device.still_served("before")
        first = device.connected_at()
        _wait("the SDK's reconnect for its new token", lambda: device.connected_at() != first)
        _wait("the device back on the hub", lambda: hub.client.get_device("sdk-renewal")["connectionState"] == "Connected")
        device.still_served("after renewal")
    finally:
        device.client.shutdown()


def test_subscriptions_survive_disconnect_connect_and_a_hub_restart(hub: HubProcess) -> None:
    device = Device(hub, "sdk-persistent")
    try:
        device.still_served("first")
        device.client.disconnect()
        device.client.connect()
        device.still_served("after reconnect")
        hub.stop()
        hub.start()
        _wait("the SDK's reconnect to the restarted hub",
              lambda: hub.client.get_device("sdk-persistent")["connectionState"] == "Connected")
        device.still_served("after restart")
    finally:
        device.client.shutdown()


def test_session_present_is_accurate_and_a_clean_session_keeps_nothing(hub: HubProcess) -> None:
    """Raw MQTT: CONNACK's session-present says whether subscriptions were kept; a kept method
    subscription serves a connection that never subscribed; a clean session drops them."""
    from localhub.protocol.mqtt_codec import Publish, Unsuback, Unsubscribe
    from localhub_rawclient import RawClient, device_token

    hub.create_device("raw-persistent")
    key = hub.device_key("raw-persistent")

    def connect(clean: bool) -> tuple[RawClient, bool]:
        client = RawClient(hub.host, hub.mqtt_port, str(hub.ca_path))
        ack = client.connect("raw-persistent", f"{hub.hostname}/raw-persistent/?api-version=2021-04-12",
                             device_token(hub.hostname, "raw-persistent", key), 60, clean)
        assert ack.return_code == 0
        return client, ack.session_present

    client, present = connect(False)
    assert present is False  # nothing kept yet
    client.subscribe("$iothub/methods/POST/#")
    client.close()
    hub.stop()
    hub.start()
    client, present = connect(False)
    assert present is True
    answers: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: answers.append(hub.invoke_method("raw-persistent", "m", {}, 15)))
    caller.start()
    request = client.expect(Publish, timeout=15)  # no SUBSCRIBE on this connection
    assert request.topic.startswith("$iothub/methods/POST/m/?$rid=")
    rid = request.topic.split("$rid=")[1]
    client.publish(f"$iothub/methods/res/200/?$rid={rid}", b'{"ok": true}')
    caller.join(15)
    assert answers and answers[0]["status"] == 200
    client.subscribe("$iothub/methods/POST/#")  # what it already holds: kept as it was
    client.close()
    client, present = connect(False)
    assert present is True
    client.send_packet(Unsubscribe(client.next_pid(), ["$iothub/methods/POST/#"]))
    assert isinstance(client.expect(Unsuback), Unsuback)
    client.close()
    client, present = connect(False)
    assert present is False  # the unsubscribed filter was dropped from what is kept
    client.subscribe("$iothub/methods/POST/#")
    client.close()
    client, present = connect(True)
    assert present is False
    client.close()
    client, present = connect(False)
    assert present is False  # the clean session dropped what was kept
    client.close()
