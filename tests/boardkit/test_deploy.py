"""`deploy` with the real mpremote to an emulated board over its serial port."""

import json

from boardkit import deploy, profiles
from hostemu.testing import BoardProcess


def test_deploy_copies_what_changed_and_the_board_boots_it(tmp_path):
    profile = profiles.load("esp32")
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"wifi": {"ssid": "hostemu", "password": "hostemu"}}))
    with BoardProcess(tmp_path / "board", install=False, serial=True) as board:
        first = deploy.deploy(profile, board.serial_url, config, compiled=False)
        assert "main.py" in first.changed and "lib/umqtt/simple.py" in first.changed and "config.json" in first.changed
        assert first.unchanged == []
        board.expect(r"reset \(SOFT_RESET\)")
        board.expect(r"^board: esp32 id: [0-9a-f]{12} free: \d+ reset cause: 5$")

        second = deploy.deploy(profile, board.serial_url, config, compiled=False, reset=False)
        assert second.changed == [] and sorted(second.unchanged) == sorted(first.changed)

        (config / "config.json").write_text(json.dumps({"wifi": {"ssid": "hostemu", "password": "hostemu"}, "x": 1}))
        third = deploy.deploy(profile, board.serial_url, config, compiled=False, reset=False)
        assert third.changed == ["config.json"]
    fs = tmp_path / "board"
    assert (fs / "lib" / "umqtt" / "simple.py").exists()
    assert json.loads((fs / "board.json").read_text())["name"] == "esp32"


def test_deploy_of_compiled_code_lays_out_mpy_and_removes_shadowing_sources(tmp_path):
    profile = profiles.load("esp8266")
    fs = tmp_path / "board"
    with BoardProcess(fs, "esp8266", install=True, serial=True) as board:  # sources already on the board
        stale_source = fs / "lib" / "umqtt" / "simple.py"
        stale_source.parent.mkdir(parents=True, exist_ok=True)
        stale_source.write_text("# an older copy\n")
        result = deploy.deploy(profile, board.serial_url, compiled=True, reset=False)
        assert "lib/umqtt/simple.mpy" in result.changed
        assert "lib/umqtt/simple.py" in result.stale
    assert not stale_source.exists()
    assert (fs / "lib" / "umqtt" / "simple.mpy").read_bytes()[:1] == b"M"  # the .mpy magic
    assert (fs / "main.py").exists() and not (fs / "main.mpy").exists()
