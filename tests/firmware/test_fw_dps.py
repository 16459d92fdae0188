"""The firmware provisioned through DPS instead of a connection string (IoT Central's way): a
config.json with ``dps`` (ID scope, registration id, an enrollment group's key), the local hub's
provisioning service, the assignment kept in dps.json so a power cut and a new boot connect
without asking DPS again. Runs on the emulated board and on MicroPython's unix port
(tests/unix/test_unix_firmware.py)."""

from __future__ import annotations

import json

from boardkit import provision
from fw_support import Board as BoardProcess
from fw_support import reported, wait_for
from localhub.server import open_dps


def test_a_node_with_a_dps_config_provisions_once_and_reboots_onto_its_hub(fw_hub, tmp_path, board_runtime):
    dps = open_dps(fw_hub.state_dir)
    group = dps.enroll(f"fw-nodes-{board_runtime}", True)
    registration_id = f"fw-node-{board_runtime}"
    folder = tmp_path / "b"
    provision.write_config(folder, "HostName=unused;DeviceId=unused;SharedAccessKey=AAAA", fw_hub.ca_pem,
                           "hostemu", "hostemu", 1)
    config = json.loads((folder / "config.json").read_text())
    del config["connection_string"]
    config["dps"] = {"id_scope": dps.id_scope, "registration_id": registration_id,
                     "group_key": group.primary_key, "host": fw_hub.host,
                     "model_id": "dtmi:com:example:SensorNode;1"}
    (folder / "config.json").write_text(json.dumps(config))

    with BoardProcess(folder, runtime=board_runtime) as board:
        first = board.expect_json("provisioned", 40)
        board.expect_json("hub", 30, connected=True)
        fw_hub.wait_telemetry(registration_id, 1, 20)
        wait_for(lambda: "device" in reported(fw_hub, registration_id), what="device facts reported")
    assert first == {"event": "provisioned", "hub": fw_hub.host, "deviceId": registration_id, "cached": False}
    assert json.loads((folder / "dps.json").read_text())["device_id"] == registration_id
    assert fw_hub.get_twin(registration_id)["modelId"] == "dtmi:com:example:SensorNode;1"

    # power cut, new boot: from dps.json, not DPS (its registration is not touched again)
    before = [(r.registration_id, r.updated) for r in dps.store.registrations()]
    with BoardProcess(folder, runtime=board_runtime) as board:
        again = board.expect_json("provisioned", 40)
        board.expect_json("hub", 30, connected=True)
    assert again["cached"] is True and again["deviceId"] == registration_id
    assert [(r.registration_id, r.updated) for r in dps.store.registrations()] == before
    assert group.primary_key not in board.output
