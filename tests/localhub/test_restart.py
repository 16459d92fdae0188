"""A hub killed with SIGKILL and restarted on the same state folder keeps registry, twins, queued
C2D and its CA; devices reconnect with the keys they had."""

from __future__ import annotations

import json

from localhub.protocol.mqtt_codec import Publish
from localhub.testing import HubProcess
from localhub_rawclient import connect_device


def test_restart_keeps_registry_twins_and_c2d(hub: HubProcess) -> None:
    cs = hub.create_device("keeper")
    hub.create_device("gone")
    hub.client.delete_device("gone")
    hub.update_twin("keeper", {"tags": {"site": "lab"}, "properties": {"desired": {"rate": 3}}})
    client = connect_device(hub, "keeper")
    client.subscribe("$iothub/twin/res/#")
    client.publish("$iothub/twin/PATCH/properties/reported/?$rid=1", b'{"fw": "2.1"}')
    assert client.expect(Publish).topic.startswith("$iothub/twin/res/204/")
    client.close()
    hub.send_c2d("keeper", "queued while offline", {"p": "1"}, message_id="q-1")
    ca_before = hub.ca_pem

    hub.kill()
    hub.start()

    assert hub.ca_pem == ca_before
    assert [d["deviceId"] for d in hub.client.list_devices()] == ["keeper"]
    twin = hub.get_twin("keeper")
    assert twin["tags"] == {"site": "lab"}
    assert twin["properties"]["desired"]["rate"] == 3
    assert twin["properties"]["desired"]["$version"] == 2
    assert twin["properties"]["reported"]["fw"] == "2.1"
    assert hub.client.get_device("keeper")["cloudToDeviceMessageCount"] == 1
    key = cs.split("SharedAccessKey=")[1]
    client = connect_device(hub, "keeper", key=key)
    client.subscribe("devices/keeper/messages/devicebound/#", "$iothub/twin/res/#")
    msg = client.expect(Publish)
    assert msg.payload == b"queued while offline"
    assert "%24.mid=q-1" in msg.topic and "p=1" in msg.topic
    client.publish("$iothub/twin/GET/?$rid=2")
    view = json.loads(client.expect(Publish).payload)
    assert view["reported"] == {"fw": "2.1", "$version": 2}
    client.close()


def test_a_state_folder_from_before_persistent_sessions_keeps_its_c2d_subscriptions(tmp_path) -> None:
    import sqlite3

    from localhub.storage.store import Store

    path = tmp_path / "hub.sqlite3"
    old = sqlite3.connect(str(path))
    old.execute("CREATE TABLE devices (device_id TEXT PRIMARY KEY, primary_key TEXT NOT NULL,"
                " secondary_key TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'enabled', status_reason TEXT,"
                " status_updated TEXT NOT NULL, generation_id TEXT NOT NULL, etag_counter INTEGER NOT NULL"
                " DEFAULT 1, twin TEXT NOT NULL, c2d_subscribed INTEGER NOT NULL DEFAULT 0, last_activity TEXT)")
    for device_id, flag in (("subscribed", 1), ("not", 0)):
        old.execute("INSERT INTO devices VALUES (?, 'k1', 'k2', 'enabled', NULL, 't', 'g', 1, '{}', ?, NULL)",
                    (device_id, flag))
    old.commit()
    old.close()
    store = Store(path)
    try:
        assert store.subscriptions("subscribed") == {"c2d": 1} and store.subscriptions("not") == {}
        assert store.get_device("subscribed").twin == {}  # the device rows still read
    finally:
        store.close()
