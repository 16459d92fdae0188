"""The simulated board a host-emulation process is: its profile, its filesystem, and the state that
lives outside that filesystem on a real chip (reset cause, RTC, eFuse MAC, Wi-Fi, watchdog).

One board process holds one `BoardContext`; the MicroPython modules in `hostemu.mp` read it. State
that must outlive a reset but is not in the board's filesystem on real hardware (the RTC, the
unique id, OTA partitions) is kept in the hidden folder `.hostemu/` inside the board folder, which
the board's own `os.listdir()` does not show.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boardkit import profiles
from boardkit.profiles import BoardProfile

PRIVATE_DIR = ".hostemu"

# How a board process tells its supervisor why it ended.
EXIT_RETURNED = 0  # main.py returned: a real board drops to the REPL
EXIT_EXCEPTION = 1  # main.py raised: traceback, then the REPL
EXIT_RESET = 70  # machine.reset()
EXIT_SOFT_RESET = 71  # machine.soft_reset(): VM restart, hardware reset cause unchanged
EXIT_WATCHDOG = 72  # the WDT was not fed in time
EXIT_DEEPSLEEP = 73  # machine.deepsleep(ms): duration in .hostemu/deepsleep


@dataclass
class WlanState:
    active: bool = False
    ssid: str | None = None
    password: str = ""
    connect_started: float | None = None
    status_code: int = 1000  # STAT_IDLE
    hostname: str = "mpy-board"


@dataclass
class BoardContext:
    profile: BoardProfile
    fs_root: Path
    reset_cause: int
    networks: dict[str, str]
    boot_monotonic: float = field(default_factory=time.monotonic)
    wlan: WlanState = field(default_factory=WlanState)
    pins: dict[int, int] = field(default_factory=dict)
    cpu_freq: int = 160_000_000

    @property
    def private_dir(self) -> Path:
        path = self.fs_root / PRIVATE_DIR
        path.mkdir(exist_ok=True)
        return path

    # --- persistent private state -------------------------------------------------------------
    def load_private(self, name: str, default: Any) -> Any:
        path = self.private_dir / f"{name}.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return default

    def save_private(self, name: str, value: Any) -> None:
        path = self.private_dir / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)

    def unique_id(self) -> bytes:
        """A board's MAC: fixed for the board folder's life, as an eFuse MAC is for a chip."""
        stored = self.load_private("identity", None)
        if not stored:
            mac = bytearray(os.urandom(6))
            mac[0] = (mac[0] & 0xFC) | 0x02  # locally administered, unicast
            stored = mac.hex()
            self.save_private("identity", stored)
        return bytes.fromhex(stored)

    # --- the real-time clock --------------------------------------------------------------------
    # The RTC counts seconds since the port's epoch. Unset, it starts at the epoch when the board
    # powers on (so a board that never syncs NTP has a clock in 2000, as a real ESP32 does); once
    # set, it keeps running across soft resets but not across a power cycle.
    def rtc_seconds(self) -> float:
        rtc = self.load_private("rtc", None)
        if rtc is None:
            return time.monotonic() - self.boot_monotonic
        return time.time() + rtc["offset"]

    def set_rtc_seconds(self, seconds: float) -> None:
        self.save_private("rtc", {"offset": seconds - time.time()})

    @property
    def epoch_offset(self) -> int:
        """Seconds from 1970-01-01 to the port's epoch."""
        return 946684800 if self.profile.epoch_year == 2000 else 0

    # --- the simulated radio --------------------------------------------------------------------
    def link_up(self) -> bool:
        """Whether the access point is reachable: tests take it away with `.hostemu/wifi_down`."""
        return not (self.fs_root / PRIVATE_DIR / "wifi_down").exists()

    # --- a heap run dry -------------------------------------------------------------------------
    def take_heap_exhaustion(self) -> str | None:
        """`service.op` written to `.hostemu/exhaust_heap` by a test, once: the device's heap is
        to be left without a free block when that call returns (see `ServiceHost`)."""
        path = self.fs_root / PRIVATE_DIR / "exhaust_heap"
        try:
            wanted = path.read_text().strip()
            path.unlink()
        except FileNotFoundError:
            return None
        return wanted or None


_current: BoardContext | None = None


def current() -> BoardContext:
    if _current is None:
        raise RuntimeError("no board is running in this process (start one with `hostemu run`)")
    return _current


def install(context: BoardContext) -> None:
    global _current
    _current = context


def board_arguments(prog: str) -> argparse.ArgumentParser:
    """The command line every board process (either runtime) takes from the supervisor."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--board", required=True, help="board profile name or JSON file")
    parser.add_argument("--fs", required=True, type=Path, help="the board's folder")
    parser.add_argument("--reset-cause", required=True, help="PWRON_RESET, SOFT_RESET, WDT_RESET, ...")
    parser.add_argument("--networks", default="{}", help="JSON object: SSID -> password")
    return parser


def board_from_arguments(args: argparse.Namespace) -> BoardContext:
    profile = profiles.load(args.board)
    return BoardContext(profile=profile, fs_root=args.fs.resolve(),
                        reset_cause=profile.rules.reset_causes[args.reset_cause],
                        networks=json.loads(args.networks))
