"""Board profiles: one JSON file per board in `boards/`, checked on the host before use.

A profile is plain data (as ESPHome and MicroPython's board folders keep them). What a chip can
carry is not up to the profile: the rules below come from the chips and from MicroPython's ports,
and a profile that breaks one is refused with an error naming the file and the field, before
anything is flashed, deployed or emulated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = REPO_ROOT / "boards"


@dataclass(frozen=True)
class ChipRules:
    """What MicroPython on a chip is: where its image goes, what code it runs, what it can hold."""

    firmware_offset: int
    mpy_arch: str
    max_heap_bytes: int
    gpio_count: int
    input_only_pins: frozenset[int]
    features: frozenset[str]
    # machine.reset_cause() values of the MicroPython port (they differ between the two ports).
    reset_causes: dict[str, int]


_ESP32_RESET_CAUSES = {
    "PWRON_RESET": 1,
    "HARD_RESET": 2,
    "WDT_RESET": 3,
    "DEEPSLEEP_RESET": 4,
    "SOFT_RESET": 5,
}
_ESP8266_RESET_CAUSES = {
    "PWRON_RESET": 0,
    "WDT_RESET": 1,
    "SOFT_RESET": 4,
    "DEEPSLEEP_RESET": 5,
    "HARD_RESET": 6,
}

CHIPS: dict[str, ChipRules] = {
    "esp32": ChipRules(
        firmware_offset=0x1000,
        mpy_arch="xtensawin",
        max_heap_bytes=160_000,
        gpio_count=40,
        input_only_pins=frozenset({34, 35, 36, 37, 38, 39}),
        features=frozenset({"ota", "tls_verify", "file_upload", "internal_temperature"}),
        reset_causes=_ESP32_RESET_CAUSES,
    ),
    "esp32s3": ChipRules(
        firmware_offset=0x0,
        mpy_arch="xtensawin",
        max_heap_bytes=8_000_000,  # with PSRAM
        gpio_count=49,
        input_only_pins=frozenset(),
        features=frozenset({"ota", "tls_verify", "file_upload", "internal_temperature"}),
        reset_causes=_ESP32_RESET_CAUSES,
    ),
    "esp32c3": ChipRules(
        firmware_offset=0x0,
        mpy_arch="rv32imc",
        max_heap_bytes=200_000,
        gpio_count=22,
        input_only_pins=frozenset(),
        features=frozenset({"ota", "tls_verify", "file_upload", "internal_temperature"}),
        reset_causes=_ESP32_RESET_CAUSES,
    ),
    # No OTA partitions on MicroPython's ESP8266 port, and its axTLS cannot verify a server
    # certificate against a CA: neither feature may be claimed.
    "esp8266": ChipRules(
        firmware_offset=0x0,
        mpy_arch="xtensa",
        max_heap_bytes=40_000,
        gpio_count=17,
        input_only_pins=frozenset({16}),
        features=frozenset({"file_upload"}),
        reset_causes=_ESP8266_RESET_CAUSES,
    ),
}

FLASH_SIZES = {"1MB": 1 << 20, "2MB": 2 << 20, "4MB": 4 << 20, "8MB": 8 << 20, "16MB": 16 << 20}
BAUD_RATES = {115200, 230400, 460800, 921600, 1500000}
MIN_FLASH_FOR_OTA = 4 << 20
KNOWN_FEATURES = frozenset().union(*(rules.features for rules in CHIPS.values()))

REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "description": str,
    "chip": str,
    "firmware_offset": str,
    "baud": int,
    "flash_size": str,
    "mpy_arch": str,
    "epoch_year": int,
    "heap_bytes": int,
    "agent_heap_budget": int,
    "mqtt_buffer": int,
    "upload_chunk": int,
    "status_led": dict,
    "features": list,
}
# Fields a profile may leave out.
OPTIONAL_FIELDS: dict[str, type] = {
    # The ROMFS partition of the board's MicroPython firmware (1.25+): bytecode deployed there runs
    # in place from flash. Absent or 0: the firmware has none, code is deployed as files.
    "romfs_bytes": int,
}
ROMFS_SECTOR = 4096


class ProfileError(ValueError):
    """A board profile that must not be used. Names the file and the field at fault."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        super().__init__(f"{source}: {field}: {reason}")
        self.source = source
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class BoardProfile:
    name: str
    description: str
    chip: str
    firmware_offset: int
    baud: int
    flash_size: str
    mpy_arch: str
    epoch_year: int
    heap_bytes: int
    agent_heap_budget: int
    mqtt_buffer: int
    upload_chunk: int
    status_led_pin: int
    status_led_active_low: bool
    features: frozenset[str]
    source: str
    romfs_bytes: int = 0

    @property
    def rules(self) -> ChipRules:
        return CHIPS[self.chip]

    @property
    def flash_bytes(self) -> int:
        return FLASH_SIZES[self.flash_size]

    def has(self, feature: str) -> bool:
        return feature in self.features

    def device_json(self) -> dict[str, Any]:
        """The part of the profile the firmware reads on the board (`board.json`)."""
        return {
            "name": self.name,
            "chip": self.chip,
            "epoch_year": self.epoch_year,
            "heap_bytes": self.heap_bytes,
            "agent_heap_budget": self.agent_heap_budget,
            "mqtt_buffer": self.mqtt_buffer,
            "upload_chunk": self.upload_chunk,
            "status_led": {"pin": self.status_led_pin, "active_low": self.status_led_active_low},
            "features": sorted(self.features),
        }


def _parse_offset(source: str, text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ProfileError(source, "firmware_offset", f"{text!r} is not a number (write it like '0x1000')") from None


def validate(data: Any, source: str) -> BoardProfile:
    """Check a profile's data against the chip rules; return it typed or raise ProfileError."""
    if not isinstance(data, dict):
        raise ProfileError(source, "(top level)", "a profile is a JSON object")
    for field, kind in REQUIRED_FIELDS.items():
        if field not in data:
            raise ProfileError(source, field, "missing")
        value = data[field]
        # bool is an int in Python; a profile saying `"baud": true` is still wrong.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise ProfileError(source, field, f"must be {expected}, not {type(value).__name__}")
    for field, kind in OPTIONAL_FIELDS.items():
        if field in data and (not isinstance(data[field], kind) or isinstance(data[field], bool)):
            raise ProfileError(source, field, f"must be {kind.__name__}, not {type(data[field]).__name__}")
    unknown = sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS) - {"notes"})
    if unknown:
        raise ProfileError(source, unknown[0], "unknown field")

    chip = data["chip"]
    if chip not in CHIPS:
        raise ProfileError(source, "chip", f"unknown chip {chip!r}; known: {', '.join(sorted(CHIPS))}")
    rules = CHIPS[chip]

    offset = _parse_offset(source, data["firmware_offset"])
    if offset != rules.firmware_offset:
        raise ProfileError(
            source, "firmware_offset",
            f"{data['firmware_offset']} is wrong for {chip}: MicroPython's image goes at {rules.firmware_offset:#x}",
        )
    if data["baud"] not in BAUD_RATES:
        raise ProfileError(source, "baud", f"{data['baud']} is not one of {sorted(BAUD_RATES)}")
    if data["flash_size"] not in FLASH_SIZES:
        raise ProfileError(source, "flash_size", f"{data['flash_size']!r} is not one of {', '.join(FLASH_SIZES)}")
    if data["mpy_arch"] != rules.mpy_arch:
        raise ProfileError(source, "mpy_arch", f"{chip} runs {rules.mpy_arch} code, not {data['mpy_arch']!r}")
    if data["epoch_year"] not in (1970, 2000):
        raise ProfileError(source, "epoch_year", "MicroPython ports count time from 1970 or 2000")
    heap = data["heap_bytes"]
    if not 0 < heap <= rules.max_heap_bytes:
        raise ProfileError(source, "heap_bytes", f"{heap} is beyond what {chip} has ({rules.max_heap_bytes})")
    budget = data["agent_heap_budget"]
    if not 0 < budget <= heap:
        raise ProfileError(source, "agent_heap_budget", f"{budget} must be positive and at most heap_bytes ({heap})")
    for field in ("mqtt_buffer", "upload_chunk"):
        size = data[field]
        if size < 256 or size & (size - 1):
            raise ProfileError(source, field, f"{size} must be a power of two, at least 256")
    if data["mqtt_buffer"] + data["upload_chunk"] > budget:
        raise ProfileError(
            source, "mqtt_buffer",
            f"mqtt_buffer + upload_chunk ({data['mqtt_buffer'] + data['upload_chunk']}) exceed agent_heap_budget ({budget})",
        )

    led = data["status_led"]
    pin = led.get("pin")
    if not isinstance(pin, int) or isinstance(pin, bool) or not 0 <= pin < rules.gpio_count:
        raise ProfileError(source, "status_led.pin", f"{pin!r} is not a GPIO of {chip} (0-{rules.gpio_count - 1})")
    if pin in rules.input_only_pins:
        raise ProfileError(source, "status_led.pin", f"GPIO{pin} of {chip} is input-only and cannot drive an LED")
    active_low = led.get("active_low", False)
    if not isinstance(active_low, bool):
        raise ProfileError(source, "status_led.active_low", "must be true or false")

    features = data["features"]
    for feature in features:
        if feature not in KNOWN_FEATURES:
            raise ProfileError(source, "features", f"unknown feature {feature!r}; known: {', '.join(sorted(KNOWN_FEATURES))}")
        if feature not in rules.features:
            raise ProfileError(source, "features", f"{feature!r} cannot be carried by {chip}")
    romfs_bytes = data.get("romfs_bytes", 0)
    if romfs_bytes < 0 or romfs_bytes % ROMFS_SECTOR:
        raise ProfileError(source, "romfs_bytes", f"{romfs_bytes} must be whole {ROMFS_SECTOR}-byte flash sectors")
    if romfs_bytes >= FLASH_SIZES[data["flash_size"]] // 2:
        raise ProfileError(source, "romfs_bytes", f"{romfs_bytes} leaves no room for the firmware in {data['flash_size']}")
    if "ota" in features and FLASH_SIZES[data["flash_size"]] < MIN_FLASH_FOR_OTA:
        raise ProfileError(source, "features", f"'ota' needs at least 4MB of flash for two app partitions, not {data['flash_size']}")

    return BoardProfile(
        name=data["name"],
        description=data["description"],
        chip=chip,
        firmware_offset=offset,
        baud=data["baud"],
        flash_size=data["flash_size"],
        mpy_arch=data["mpy_arch"],
        epoch_year=data["epoch_year"],
        heap_bytes=heap,
        agent_heap_budget=budget,
        mqtt_buffer=data["mqtt_buffer"],
        upload_chunk=data["upload_chunk"],
        status_led_pin=pin,
        status_led_active_low=active_low,
        features=frozenset(features),
        source=source,
        romfs_bytes=romfs_bytes,
    )


def load_file(path: Path) -> BoardProfile:
    source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(source, "(file)", "no such file") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(source, "(json)", f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    profile = validate(data, source)
    if profile.name != path.stem:
        raise ProfileError(source, "name", f"{profile.name!r} does not match the file name {path.stem!r}")
    return profile


def available(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.stem for p in boards_dir.glob("*.json"))


def load(name_or_path: str | Path, boards_dir: Path = BOARDS_DIR) -> BoardProfile:
    """Load a profile by board name (`esp32`) or by path to its JSON file."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = boards_dir / f"{name_or_path}.json"
        if not path.exists():
            raise ProfileError(str(path), "(file)", f"no board named {name_or_path!r}; boards: {', '.join(available(boards_dir))}")
    return load_file(path)
