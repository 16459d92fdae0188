"""`deploy` with the real mpremote to an emulated board over its serial port."""

import json

from boardkit import deploy, profiles, provision
from hostemu.testing import BoardProcess
from localhub.testing import HubProcess


def test_deploy_copies_what_changed_and_the_board_boots_it_into_the_hub(tmp_path):
    profile = profiles.load("esp32")
    config = tmp_path / "config"
    with HubProcess(tmp_path / "hub") as hub, BoardProcess(tmp_path / "board", install=False, serial=True) as board:
        provision.write_config(config, hub.create_device("deployed-1"), hub.ca_pem, "hostemu", "hostemu", 2)
        first = deploy.deploy(profile, board.serial_url, config, compiled=False)
        assert {"main.py", "app/main.py", "lib/iothub/client.py", "lib/umqtt/simple.py", "config.json", "ca.der"} <= set(first.changed)
        assert first.unchanged == []
        board.expect(r"reset \(SOFT_RESET\)")
        assert board.expect_json("hub", 60, connected=True)
        assert hub.wait_telemetry("deployed-1", 1, 30)

        second = deploy.deploy(profile, board.serial_url, config, compiled=False, reset=False)
        assert second.changed == [] and sorted(second.unchanged) == sorted(first.changed)

        settings = json.loads((config / "config.json").read_text())
        settings["telemetry_interval"] = 3
        (config / "config.json").write_text(json.dumps(settings))
        third = deploy.deploy(profile, board.serial_url, config, compiled=False, reset=False)
        assert third.changed == ["config.json"]
    fs = tmp_path / "board"
    assert (fs / "lib" / "umqtt" / "simple.py").exists()
    assert json.loads((fs / "board.json").read_text())["name"] == "esp32"


def test_deploy_of_compiled_code_lays_out_mpy_removes_shadowing_sources_and_boots_in_micropython(tmp_path):
    """.mpy files cannot run on CPython: the board folder deployed over the serial console is then
    booted by the MicroPython VM runtime, which loads them as a board does."""
    profile = profiles.load("esp8266")
    fs = tmp_path / "board"
    config = tmp_path / "config"
    with HubProcess(tmp_path / "hub") as hub:
        provision.write_config(config, hub.create_device("deployed-mpy"), hub.ca_pem, "hostemu", "hostemu", 2)
        with BoardProcess(fs, "esp8266", install=True, serial=True) as board:  # sources already on the board
            stale_source = fs / "lib" / "umqtt" / "simple.py"
            stale_source.parent.mkdir(parents=True, exist_ok=True)
            stale_source.write_text("# an older copy\n")
            result = deploy.deploy(profile, board.serial_url, config, compiled=True, reset=False)
            assert "lib/umqtt/simple.mpy" in result.changed and "lib/iothub/client.mpy" in result.changed
            assert "lib/umqtt/simple.py" in result.stale and "lib/iothub/client.py" in result.stale
        assert not stale_source.exists() and not (fs / "lib" / "iothub" / "client.py").exists()
        assert (fs / "lib" / "umqtt" / "simple.mpy").read_bytes()[:1] == b"M"  # the .mpy magic
        assert (fs / "main.py").exists() and not (fs / "main.mpy").exists()

        with BoardProcess(fs, "esp8266", install=False, runtime="vm") as board:
            assert board.expect_json("hub", 90, connected=True)
            assert hub.wait_telemetry("deployed-mpy", 1, 30)
