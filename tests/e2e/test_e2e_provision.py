"""The device library's DPS registration on a simulated board (and again on MicroPython's unix
port: tests/unix/test_unix_provision.py): registered with the local hub's provisioning service,
the assignment cached on flash and reused without asking DPS, then telemetry where DPS said."""

from __future__ import annotations

from localhub.server import open_dps

PROVISION_MAIN = r"""
from e2e_dev import ev, network_up, config, read_ca, poll_until
from iothub import provision
from iothub.client import IoTHubClient

network_up()
cfg = config()
d = cfg["dps"]
r = provision.cached("dps.json", d["scope"], d["registration_id"], d["key"], read_ca(), host=d["host"],
                     port=cfg["mqtt_port"], model_id="dtmi:com:example:Board;1")
ev("assigned", hub=r["hub"], device_id=r["device_id"], substatus=r["substatus"])
# the next boot: the same call answers from flash (with a key DPS would refuse)
again = provision.cached("dps.json", d["scope"], d["registration_id"], "AAAA", read_ca(), host=d["host"],
                         port=cfg["mqtt_port"])
ev("cached", flag=again.pop("cached", False), same=again == r)
c = IoTHubClient(provision.connection_string(r, d["key"]), ca=read_ca(), port=cfg["mqtt_port"])
c.connect()
c.send_telemetry(b'{"via": "dps"}')
poll_until(c, lambda: c.stats()["inflight"] == 0)
ev("sent")
c.disconnect()
"""


def test_a_board_provisions_caches_its_assignment_and_connects_where_dps_said(hub, make_board) -> None:
    dps = open_dps(hub.state_dir)
    group = dps.enroll("e2e-boards", True)
    from localhub.protocol import auth

    registration_id = "e2e-board-17"
    key = auth.derive_device_key(group.primary_key, registration_id)
    board = make_board("e2e-provision-host", PROVISION_MAIN, extra_config={"dps": {
        "scope": dps.id_scope, "registration_id": registration_id, "key": key, "host": hub.host}})
    assigned = board.expect_json("assigned", 40)
    assert assigned == {"event": "assigned", "hub": hub.host, "device_id": registration_id,
                        "substatus": "initialAssignment"}
    cached = board.expect_json("cached", 10)
    assert cached["flag"] is True and cached["same"] is True
    board.expect_json("sent", 20)
    assert [r.registration_id for r in dps.store.registrations()].count(registration_id) == 1
    (msg,) = hub.wait_telemetry(registration_id, 1, 10)
    assert msg["body"] == '{"via": "dps"}'
    assert hub.get_twin(registration_id)["modelId"] == "dtmi:com:example:Board;1"
