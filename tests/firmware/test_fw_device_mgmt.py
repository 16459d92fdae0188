"""The agent app on the host emulation layer against the local hub: config handling, reported
properties, desired properties with acknowledgements, and the reboot/factoryReset/uploadFile
direct methods. Assertions are on what the hub saw wherever possible."""

from __future__ import annotations

import json

import pytest

from fw_support import Board as BoardProcess
from fw_support import provision_board, reported, wait_for


def test_reports_device_facts_and_sends_numbered_telemetry(fw_hub, tmp_path):
    folder = provision_board(fw_hub, tmp_path / "b", "facts", interval=1)
    with BoardProcess(folder, "esp8266") as board:
        board.expect_json("hub", 30, connected=True)
        messages = fw_hub.wait_telemetry("facts", 3, 15)
        twin = wait_for(lambda: "device" in reported(fw_hub, "facts") and reported(fw_hub, "facts"),
                        what="device facts reported")
    first = [json.loads(m["body"]) for m in messages[:3]]
    assert [m["seq"] for m in first] == [1, 2, 3]
    assert all(m["boot"] == 1 for m in first) and "temperature" in first[0]
    assert messages[0]["systemProperties"].get("content-type") == "application/json"
    assert twin["app"]["version"] == "1.0.0" and twin["app"]["board"] == "esp8266"
    assert twin["device"]["resetCause"] == "PWRON_RESET" and twin["device"]["bootCount"] == 1
    assert twin["connectivity"]["connected"] is True and twin["connectivity"]["type"] == "wifi"
    assert twin["queue"] == {"pending": 0, "dropped": 0}
    assert twin["firmware"]["fwUpdateStatus"] == "current"
    assert twin["iothubDM"]["reboot"]["lastReboot"].endswith("Z")


def test_a_missing_config_is_reported_and_retried_until_it_appears(fw_hub, tmp_path):
    folder = tmp_path / "b"
    provision_board(fw_hub, folder, "cfg")
    good = (folder / "config.json").read_text()
    (folder / "config.json").unlink()
    reason = "config.json is missing"
    with BoardProcess(folder) as board:
        assert board.expect_json("config_error", 20)["reason"] == reason
        board.expect(r"^config: " + reason[:20], 5)  # said in words on the console too
        (folder / "config.json").write_text(good)  # fixed: the next retry picks it up
        board.expect_json("hub", 30, connected=True)
    key = json.loads(good)["connection_string"].split("SharedAccessKey=")[1]
    assert key not in board.output


def test_telemetry_interval_patch_changes_the_rate_and_is_acknowledged(fw_hub, tmp_path):
    folder = provision_board(fw_hub, tmp_path / "b", "rate", interval=60)
    with BoardProcess(folder) as board:
        board.expect_json("hub", 30, connected=True)
        fw_hub.wait_telemetry("rate", 1, 15)  # the first message goes at once, the next in 60 s
        twin = fw_hub.update_twin("rate", {"properties": {"desired": {"telemetryInterval": 1, "ledEnabled": "yes"}}})
        version = twin["properties"]["desired"]["$version"]
        board.expect_json("desired", 15, version=version)
        # At 60 s nothing more would come within the next minute; at 1 s four more come in seconds.
        fw_hub.wait_telemetry("rate", 5, 10)
        ack = wait_for(lambda: reported(fw_hub, "rate").get("telemetryInterval"), what="ack")
        led = reported(fw_hub, "rate")["ledEnabled"]
        # A value out of range is refused with 400 and the running value stays.
        twin = fw_hub.update_twin("rate", {"properties": {"desired": {"telemetryInterval": 0}}})
        bad_version = twin["properties"]["desired"]["$version"]
        refused = wait_for(lambda: reported(fw_hub, "rate")["telemetryInterval"]["av"] == bad_version
                           and reported(fw_hub, "rate")["telemetryInterval"], what="refusal")
    assert ack == {"value": 1, "ac": 200, "av": version, "ad": "applied"}
    assert led["ac"] == 400 and led["value"] is True
    assert refused["ac"] == 400 and refused["value"] == 1


def test_reboot_answers_restarts_and_lastreboot_changes(fw_hub, tmp_path, board_runtime):
    folder = provision_board(fw_hub, tmp_path / "b", "reboot", interval=30)
    with BoardProcess(folder, runtime=board_runtime) as board:
        board.expect_json("booted", 30, boot=1)
        board.expect_json("hub", 30, connected=True)
        before = wait_for(lambda: reported(fw_hub, "reboot").get("device"), what="first report")
        first = reported(fw_hub, "reboot")["iothubDM"]["reboot"]["lastReboot"]
        answer = fw_hub.invoke_method("reboot", "reboot", None, 15)
        booted = board.expect_json("booted", 30, boot=2)
        board.expect_json("hub", 30, connected=True)
        after = wait_for(lambda: reported(fw_hub, "reboot")["device"]["bootCount"] == 2
                         and reported(fw_hub, "reboot"), what="report after the reboot")
    assert answer["status"] == 200 and answer["payload"]["rebooting"] is True
    assert before["bootCount"] == 1
    assert booted["resetCause"] == "SOFT_RESET" and after["device"]["resetCause"] == "SOFT_RESET"
    assert after["iothubDM"]["reboot"]["lastReboot"] >= answer["payload"]["lastReboot"] >= first
    assert after["device"]["lastBoot"] != before["lastBoot"] or after["device"]["bootCount"] == 2


def test_factory_reset_clears_the_config_but_keeps_identity(fw_hub, tmp_path, board_runtime):
    folder = provision_board(fw_hub, tmp_path / "b", "factory", interval=1, report_interval=60,
                             queue_slots=8)
    original = json.loads((folder / "config.json").read_text())
    with BoardProcess(folder, runtime=board_runtime) as board:
        board.expect_json("hub", 30, connected=True)
        fw_hub.update_twin("factory", {"properties": {"desired": {"telemetryInterval": 2}}})
        board.expect_json("desired", 15)
        assert (folder / "settings.json").exists()
        answer = fw_hub.invoke_method("factory", "factoryReset", None, 15)
        board.expect_json("factory_reset", 15)
        booted = board.expect_json("booted", 30)
        board.expect_json("hub", 30, connected=True)  # identity kept: it is back on the hub
    config = json.loads((folder / "config.json").read_text())
    assert answer["status"] == 200
    assert config == {k: original[k] for k in ("wifi", "connection_string", "ca_file")}
    assert booted["boot"] == 1  # boot state was erased too
    assert (folder / "ca.der").exists()


def test_upload_file_method_sends_a_file_from_flash(fw_hub, tmp_path, board_runtime):
    folder = provision_board(fw_hub, tmp_path / "b", "uploader", interval=30)
    data = bytes(range(256)) * 40
    (folder / "log.bin").write_bytes(data)
    with BoardProcess(folder, runtime=board_runtime) as board:
        board.expect_json("hub", 30, connected=True)
        missing = fw_hub.invoke_method("uploader", "uploadFile", {"path": "nope.bin"}, 15)
        answer = fw_hub.invoke_method("uploader", "uploadFile", {"path": "log.bin", "blobName": "logs/1.bin"}, 15)
        result = board.expect_json("upload", 60)
        notes = fw_hub.wait_upload_notifications("uploader", 1, 15)
        last = wait_for(lambda: reported(fw_hub, "uploader").get("lastUpload"), what="lastUpload")
    assert missing["status"] == 404
    assert answer["status"] == 202 and answer["payload"]["bytes"] == len(data)
    assert result["status"] == "done", result
    assert notes[0]["blobName"] == "uploader/logs/1.bin" and notes[0]["isSuccess"] is True
    assert fw_hub.read_blob("uploader/logs/1.bin") == data
    assert last["status"] == "done" and last["bytes"] == len(data)


@pytest.mark.parametrize("profile", ["esp32s3", "esp32c3"])
def test_the_app_runs_on_the_other_board_profiles(fw_hub, tmp_path, profile):
    folder = provision_board(fw_hub, tmp_path / "b", "board-" + profile, interval=30)
    with BoardProcess(folder, profile) as board:
        board.expect_json("hub", 30, connected=True)
        fw_hub.wait_telemetry("board-" + profile, 1, 15)
        facts = wait_for(lambda: reported(fw_hub, "board-" + profile).get("app"), what="facts")
    assert facts["board"] == profile
