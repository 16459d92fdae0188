"""Flash MicroPython onto a board with esptool, after checking, without touching the board, that
the image is readable, is for the profile's chip, and that the port exists.

esptool's `image-info` reads the chip from the image header (the ESP32 family records a chip id
in its extended header; an ESP8266 image has none); `write-flash` erases, writes at the
profile's offset and baud and checks the hash of what was written; `verify-flash` reads it back.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from boardkit.profiles import BoardProfile

# How esptool's image-info names the chips of our profiles.
IMAGE_CHIP_NAMES = {"ESP32": "esp32", "ESP32-S3": "esp32s3", "ESP32-C3": "esp32c3", "ESP8266": "esp8266"}


class FlashError(RuntimeError):
    pass


@dataclass(frozen=True)
class ImageInfo:
    chip: str
    size: int


def esptool_path() -> list[str]:
    return [sys.executable, "-m", "esptool"]


def inspect_image(firmware: Path) -> ImageInfo:
    """The chip an image is built for, read by esptool from its header."""
    if not firmware.is_file():
        raise FlashError(f"{firmware}: no such image file")
    try:
        with firmware.open("rb") as handle:
            head = handle.read(1)
    except OSError as exc:
        raise FlashError(f"{firmware}: cannot be read ({exc.strerror})") from None
    if head != b"\xe9":
        raise FlashError(f"{firmware}: not an ESP firmware image (it does not start with the 0xE9 magic byte)")
    result = subprocess.run([*esptool_path(), "image-info", str(firmware)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    match = re.search(r"Detected image type: (\S+)", output)
    if result.returncode != 0 or not match:
        reason = output.strip().splitlines()[-1] if output.strip() else "esptool could not read it"
        raise FlashError(f"{firmware}: unreadable image ({reason})")
    detected = match.group(1)
    if detected not in IMAGE_CHIP_NAMES:
        raise FlashError(f"{firmware}: an image for {detected}, which no board profile has")
    return ImageInfo(IMAGE_CHIP_NAMES[detected], firmware.stat().st_size)


def check_port(port: str) -> None:
    if not port:
        raise FlashError("no serial port given (e.g. PORT=/dev/ttyUSB0)")
    if "://" not in port and not os.path.exists(port):
        raise FlashError(f"{port}: no such serial port (is the board plugged in?)")


def plan_commands(profile: BoardProfile, port: str, firmware: Path) -> list[list[str]]:
    common = [*esptool_path(), "--chip", profile.chip, "--port", port, "--baud", str(profile.baud)]
    offset = f"{profile.firmware_offset:#x}"
    return [
        [*common, "erase-flash"],
        [*common, "write-flash", "--flash-size", profile.flash_size, offset, str(firmware)],
        [*common, "verify-flash", offset, str(firmware)],
    ]


def check(profile: BoardProfile, port: str, firmware: Path) -> ImageInfo:
    """Everything that can be known before the board is touched; raises FlashError."""
    image = inspect_image(firmware)
    if image.chip != profile.chip:
        raise FlashError(f"{firmware} is an image for {image.chip}, but board {profile.name} is {profile.chip}: not flashing")
    if image.size > profile.flash_bytes - profile.firmware_offset:
        raise FlashError(f"{firmware} ({image.size} bytes) does not fit {profile.flash_size} of flash")
    check_port(port)
    return image


def flash(profile: BoardProfile, port: str, firmware: Path) -> None:
    check(profile, port, firmware)
    for command in plan_commands(profile, port, firmware):
        result = subprocess.run(command, timeout=600)
        if result.returncode != 0:
            raise FlashError(f"esptool {command[command.index('--baud') + 2]} failed with exit status {result.returncode}")
