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
            # As files: the VM (MicroPython 1.27's WebAssembly port) has no vfs.VfsRom to mount an image.
            result = deploy.deploy(profile, board.serial_url, config, compiled=True, reset=False, in_place=False)
            assert "lib/umqtt/simple.mpy" in result.changed and "lib/iothub/client.mpy" in result.changed
            assert "lib/umqtt/simple.py" in result.stale and "lib/iothub/client.py" in result.stale
        assert not stale_source.exists() and not (fs / "lib" / "iothub" / "client.py").exists()
        assert (fs / "lib" / "umqtt" / "simple.mpy").read_bytes()[:1] == b"M"  # the .mpy magic
        assert (fs / "main.py").exists() and not (fs / "main.mpy").exists()

        with BoardProcess(fs, "esp8266", install=False, runtime="vm") as board:
            assert board.expect_json("hub", 90, connected=True)
            assert hub.wait_telemetry("deployed-mpy", 1, 30)


def _romfs_profile(tmp_path, name="esp32", romfs_bytes=131072):
    """An ESP32 built with MicroPython's partitions-4MiB-romfs.csv (a 128 KiB ROMFS partition):
    ESP32_GENERIC has none, so a user who wants code in place builds one."""
    data = json.loads((profiles.BOARDS_DIR / f"{name}.json").read_text())
    data["romfs_bytes"] = romfs_bytes
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_deploy_in_place_writes_one_romfs_image_with_mpremote_and_the_unix_port_runs_it_from_rom(tmp_path):
    """The code goes into the board's ROMFS partition through the real `mpremote romfs deploy`
    (the emulated console answers vfs.rom_ioctl as the ESP8266 port does); what an earlier file
    deploy left would shadow /rom and is removed; the board then boots on MicroPython's unix port,
    which mounts the partition with its own vfs.VfsRom and imports the agent from /rom."""
    from hostemu.mp import romfs

    profile_path = _romfs_profile(tmp_path)
    profile = profiles.load(profile_path)
    fs = tmp_path / "board"
    config = tmp_path / "config"
    with HubProcess(tmp_path / "hub") as hub:
        provision.write_config(config, hub.create_device("in-place-1"), hub.ca_pem, "hostemu", "hostemu", 2)
        with BoardProcess(fs, str(profile_path), install=True, serial=True) as board:  # files from an earlier deploy
            result = deploy.deploy(profile, board.serial_url, config, reset=False)
            assert result.write_image and result.image is not None
            assert "lib/iothub/client.mpy" in result.image.members and "app/main.mpy" in result.image.members
            assert sorted(result.changed) == ["ca.der", "config.json"]
            assert "lib/iothub/client.py" in result.stale and "app/main.py" in result.stale
            assert {"app", "lib/iothub", "lib"} <= set(result.stale_dirs)
            again = deploy.deploy(profile, board.serial_url, config, reset=False)
            assert not again.write_image and again.changed == [] and again.stale == []
        on_flash = sorted(p.relative_to(fs).as_posix() for p in fs.rglob("*") if ".hostemu" not in p.parts)
        assert on_flash == ["board.json", "boot.py", "ca.der", "config.json", "main.py"]
        held = romfs.path_for(fs).read_bytes()
        assert len(held) == profile.romfs_bytes and romfs.image_length(held) == result.image.size

        with BoardProcess(fs, str(profile_path), install=False, runtime="unix") as board:
            assert board.expect_json("hub", 90, connected=True)
            assert hub.wait_telemetry("in-place-1", 1, 30)


def test_a_file_deploy_erases_the_image_that_would_shadow_it(tmp_path):
    from hostemu.mp import romfs

    profile_path = _romfs_profile(tmp_path)
    profile = profiles.load(profile_path)
    fs = tmp_path / "board"
    with BoardProcess(fs, str(profile_path), install=False, serial=True) as board:
        deploy.deploy(profile, board.serial_url, None, reset=False)
        assert romfs.image_length(romfs.path_for(fs).read_bytes())
        files = deploy.deploy(profile, board.serial_url, None, reset=False, in_place=False)
        assert files.erase_image and "lib/iothub/client.mpy" in files.changed
    assert romfs.image_length(romfs.path_for(fs).read_bytes()) == 0
    assert (fs / "lib" / "iothub" / "client.mpy").exists()


def test_deploy_in_place_refuses_a_board_without_romfs_and_an_image_too_big(tmp_path):
    import pytest

    with pytest.raises(deploy.DeployError, match="romfs_bytes"):
        deploy.prepare(profiles.load("esp32"), tmp_path / "a", in_place=True)
    small = profiles.load(_romfs_profile(tmp_path, romfs_bytes=8192))
    with pytest.raises(deploy.DeployError, match="does not fit the board's 8192-byte partition"):
        deploy.prepare(small, tmp_path / "b")
