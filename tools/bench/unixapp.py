"""The whole firmware (boot.py, main.py, the app on lib/iothub) on MicroPython's unix port as an
ESP8266, from `.mpy` files and in place from its ROMFS partition: the smallest free heap (bytes
above what the interpreter and the board modules hold, 64-bit) at which a board boots, connects to
the local hub and has two telemetry messages received there. Laid out by `boardkit deploy`'s own
builder, so the board holds what a deploy would write.
"""

from __future__ import annotations

import json
import shutil
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from boardkit import deploy, profiles, provision
from bench.unixagent import smallest_heap
from hostemu import context
from hostemu.mp import romfs
from hostemu.peripherals.results import RuntimeFailure
from hostemu.unix.board_process import WORD_SCALE, make_board

BOARD = "esp8266"


def lay_out(board_dir: Path, profile: profiles.BoardProfile, config: Path, in_place: bool, work: Path) -> int:
    """A board folder as a deploy leaves it; returns the ROMFS image's size (0 as files)."""
    shutil.rmtree(board_dir, ignore_errors=True)
    board_dir.mkdir(parents=True)
    files, image = deploy.prepare(profile, work, config, compiled=True, in_place=in_place)
    for board_path, source in files.items():
        target = board_dir / board_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    if image is None:
        return 0
    romfs.program(board_dir, profile.romfs_bytes, image.path.read_bytes())
    return image.size


def boots_and_sends(hub: Any, board_dir: Path, profile: profiles.BoardProfile, device_id: str, free: int) -> bool:
    board = context.BoardContext(profile=profile, fs_root=board_dir.resolve(),
                                 reset_cause=profile.rules.reset_causes["PWRON_RESET"],
                                 networks={"hostemu": "hostemu"})
    runtime = make_board(board, free_heap=free, timeout=60)
    received: list[bool] = []

    def watch() -> None:
        try:
            received.append(bool(hub.wait_telemetry(device_id, 2, 40)))
        except Exception:  # noqa: BLE001 - not received in time: this heap is too small
            received.append(False)
        runtime.stop()

    threading.Thread(target=watch, daemon=True).start()
    try:
        runtime.boot()  # a board runs until stopped: the watcher stops it
    except RuntimeFailure:
        pass
    return bool(received and received[0])


# In place, the figure is the median over this many hubs: a hub's loopback address changes the
# length of the strings the board holds (connection string, host), and with them where its heap
# fragments; one board's smallest heap moved by up to 2.6 KB from one hub to the next.
HUBS = 3


def _smallest_free_heap(hub: Any, work: Path, profile: profiles.BoardProfile, in_place: bool, tag: str,
                        step: int) -> tuple[int, int]:
    """(smallest free heap, image bytes) of the firmware laid out for `hub`, to `step` bytes."""
    kind = "in_place" if in_place else "files"
    board_dir = work / f"app-{kind}-{tag}"
    config = work / f"app-config-{kind}-{tag}"
    provision.write_config(config, hub.create_device(f"bench-app-{kind}"), hub.ca_pem, "hostemu", "hostemu", 1)
    image = lay_out(board_dir, profile, config, in_place, work / f"app-build-{kind}-{tag}")
    counter = iter(range(100_000))

    def works(free: int) -> bool:
        # A fresh device each trial, its name always as long: telemetry counted at the hub is
        # this trial's, and the heap's layout does not change with the trial's number.
        name = "bench-app-%s-%05d" % (kind, next(counter))
        settings = json.loads((board_dir / "config.json").read_text())
        settings["connection_string"] = hub.create_device(name)
        (board_dir / "config.json").write_text(json.dumps(settings))
        for state in ("queue.bin", "state.json", "fwstate.json", "settings.json"):  # the last trial's
            (board_dir / state).unlink(missing_ok=True)
        return boots_and_sends(hub, board_dir, profile, name, free)

    return smallest_heap(works, low=16 * 1024, high=256 * 1024, step=step), image


def measure(hub: Any, work: Path, hubs: int = HUBS) -> dict[str, Any]:
    from localhub.testing import HubProcess

    profile = profiles.load(BOARD)
    result: dict[str, Any] = {"board": BOARD, "word_scale": WORD_SCALE,
                              "agent_heap_budget_64bit": int(profile.agent_heap_budget * WORD_SCALE)}
    files, _ = _smallest_free_heap(hub, work, profile, False, "0", 2048)
    result["files"] = {"smallest_free_heap": files, "image_bytes": 0}
    per_hub = []
    for index in range(hubs):
        with nullcontext(hub) if index == 0 else HubProcess(work / f"app-hub-{index}") as on:
            figure, image = _smallest_free_heap(on, work, profile, True, str(index), 1024)
        per_hub.append(figure)
    result["in_place"] = {"smallest_free_heap": sorted(per_hub)[len(per_hub) // 2], "per_hub": per_hub,
                          "image_bytes": image}
    result["ratio_in_place_over_files"] = result["in_place"]["smallest_free_heap"] / files
    return result


def main() -> None:  # python -m bench.unixapp: one run, printed
    import tempfile

    from localhub.testing import HubProcess

    with tempfile.TemporaryDirectory() as tmp, HubProcess(Path(tmp) / "hub") as hub:
        print(json.dumps(measure(hub, Path(tmp)), indent=1))


if __name__ == "__main__":
    main()
