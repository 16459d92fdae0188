"""`flash` checks the image, the chip and the port before anything touches a board."""

import subprocess
import sys
from pathlib import Path

import pytest
from esptool.bin_image import ELFSection, ESP32C3FirmwareImage, ESP32FirmwareImage, ESP32S3FirmwareImage, ESP8266ROMFirmwareImage

from boardkit import flash, profiles

IMAGE_CLASSES = {"esp32": ESP32FirmwareImage, "esp32c3": ESP32C3FirmwareImage, "esp32s3": ESP32S3FirmwareImage,
                 "esp8266": ESP8266ROMFirmwareImage}


def make_image(tmp_path: Path, chip: str) -> Path:
    """A real ESP application image for `chip`, built with esptool's own image classes."""
    image = IMAGE_CLASSES[chip]()
    image.entrypoint = 0x40080000
    image.segments = [ELFSection(b".dram0.data", 0x3FFB0000, b"\x11" * 64, 0)]
    path = tmp_path / f"{chip}.bin"
    image.save(str(path))
    if chip == "esp8266":  # esptool names ESP8266 images by their flash offset
        Path(str(path) + "0x00000.bin").rename(path)
    return path


@pytest.mark.parametrize("chip", sorted(IMAGE_CLASSES))
def test_image_chip_is_read_from_its_header(tmp_path, chip):
    assert flash.inspect_image(make_image(tmp_path, chip)).chip == chip


def test_an_image_for_another_chip_is_refused_before_the_port_is_looked_at(tmp_path):
    image = make_image(tmp_path, "esp32c3")
    with pytest.raises(flash.FlashError, match="an image for esp32c3, but board esp32 is esp32: not flashing"):
        flash.check(profiles.load("esp32"), "/dev/ttyUSB-not-there", image)


def test_a_missing_port_is_refused(tmp_path):
    image = make_image(tmp_path, "esp32")
    with pytest.raises(flash.FlashError, match="no such serial port"):
        flash.check(profiles.load("esp32"), str(tmp_path / "ttyUSB0"), image)
    with pytest.raises(flash.FlashError, match="no serial port given"):
        flash.check(profiles.load("esp32"), "", image)


def test_unreadable_and_foreign_files_are_refused(tmp_path):
    text = tmp_path / "notes.bin"
    text.write_text("not firmware")
    with pytest.raises(flash.FlashError, match="does not start with the 0xE9 magic byte"):
        flash.inspect_image(text)
    with pytest.raises(flash.FlashError, match="no such image file"):
        flash.inspect_image(tmp_path / "missing.bin")
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(make_image(tmp_path, "esp32").read_bytes()[:20])
    with pytest.raises(flash.FlashError, match="unreadable image"):
        flash.inspect_image(truncated)


def test_the_plan_writes_at_the_profile_offset_and_baud_and_verifies(tmp_path):
    profile = profiles.load("esp32")
    image = make_image(tmp_path, "esp32")
    erase, write, verify = flash.plan_commands(profile, "/dev/ttyUSB0", image)
    assert erase[-1] == "erase-flash" and "--chip" in erase and erase[erase.index("--chip") + 1] == "esp32"
    assert write[-4:] == ["--flash-size", "4MB", "0x1000", str(image)] and "460800" in write
    assert verify[-3:] == ["verify-flash", "0x1000", str(image)]


def test_the_cli_refuses_without_touching_anything(tmp_path):
    image = make_image(tmp_path, "esp8266")
    cli = [sys.executable, "-m", "boardkit.cli", "flash", "--board", "esp32", "--port", "/dev/ttyUSB-none", "--firmware", str(image)]
    result = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "an image for esp8266, but board esp32 is esp32" in result.stderr
