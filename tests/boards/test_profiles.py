import json
from pathlib import Path

import pytest

from boardkit import profiles
from boardkit.profiles import ProfileError

BOARDS = ["esp32", "esp32s3", "esp32c3", "esp8266"]


@pytest.mark.parametrize("name", BOARDS)
def test_each_profile_loads(name):
    profile = profiles.load(name)
    assert profile.name == name
    assert profile.mpy_arch == profiles.CHIPS[profile.chip].mpy_arch
    assert profile.firmware_offset == profiles.CHIPS[profile.chip].firmware_offset
    assert profile.mqtt_buffer + profile.upload_chunk <= profile.agent_heap_budget


def test_every_profile_in_the_folder_is_one_of_the_four():
    assert profiles.available() == sorted(BOARDS)


def test_esp8266_carries_no_ota_and_small_chunks():
    esp8266 = profiles.load("esp8266")
    esp32 = profiles.load("esp32")
    assert not esp8266.has("ota") and esp32.has("ota")
    assert esp8266.upload_chunk < esp32.upload_chunk


def _write(tmp_path: Path, name: str, **changes) -> Path:
    data = json.loads((profiles.BOARDS_DIR / f"{name}.json").read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "board, changes, field, words",
    [
        ("esp32", {"chip": "esp31"}, "chip", "unknown chip 'esp31'"),
        ("esp32", {"firmware_offset": "0x0"}, "firmware_offset", "goes at 0x1000"),
        ("esp32c3", {"firmware_offset": "0x1000"}, "firmware_offset", "goes at 0x0"),
        ("esp32", {"firmware_offset": "4k"}, "firmware_offset", "not a number"),
        ("esp32", {"mqtt_buffer": None}, "mqtt_buffer", "missing"),
        ("esp32", {"baud": "fast"}, "baud", "must be int"),
        ("esp32", {"mpy_arch": "xtensa"}, "mpy_arch", "runs xtensawin"),
        ("esp8266", {"features": ["file_upload", "ota"]}, "features", "'ota' cannot be carried by esp8266"),
        ("esp8266", {"features": ["tls_verify"]}, "features", "cannot be carried"),
        ("esp32", {"features": ["telepathy"]}, "features", "unknown feature"),
        ("esp32", {"flash_size": "2MB"}, "features", "needs at least 4MB"),
        ("esp8266", {"heap_bytes": 90000}, "heap_bytes", "beyond what esp8266 has"),
        ("esp32", {"upload_chunk": 5000}, "upload_chunk", "power of two"),
        ("esp32", {"status_led": {"pin": 36}}, "status_led.pin", "input-only"),
        ("esp32", {"status_led": {"pin": 77}}, "status_led.pin", "not a GPIO"),
        ("esp32", {"colour": "blue"}, "colour", "unknown field"),
    ],
)
def test_bad_profiles_are_refused_naming_file_and_field(tmp_path, board, changes, field, words):
    path = _write(tmp_path, board, **changes)
    with pytest.raises(ProfileError) as caught:
        profiles.load(path)
    assert caught.value.field == field
    assert str(path) in str(caught.value)
    assert f": {field}: " in str(caught.value)
    assert words in str(caught.value)


def test_broken_json_names_the_line(tmp_path):
    path = tmp_path / "esp32.json"
    path.write_text('{"name": "esp32",\n "chip": }')
    with pytest.raises(ProfileError, match=r"esp32.json: \(json\): line 2"):
        profiles.load(path)


def test_unknown_board_name_lists_the_boards():
    with pytest.raises(ProfileError, match="no board named 'esp99'; boards: esp32, esp32c3, esp32s3, esp8266"):
        profiles.load("esp99")
