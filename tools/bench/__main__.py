"""`make bench`: the project's figures, measured side by side in one run, printed as a table and
written to `bench-results.json`:
- live heap of the agent in the MicroPython VM per phase, and the highest seen (bench.vmagent);
- on MicroPython's real unix port (64-bit), the agent against micropython-lib's umqtt.simple: live
  heap per phase, the smallest -X heapsize each needs, from .mpy files and in place from a ROMFS
  image, and 1 MB upload time over mbedTLS with and without Nagle (bench.unixagent);
- the whole firmware as an ESP8266 on the unix port: the smallest free heap it runs in, from
  files and in place (the median over three hubs: bench.unixapp);
- size of every compiled .mpy per board architecture;
- telemetry messages/s and upload MB/s of the agent against azure-iot-device on one hub
  (bench.throughput);
- local hub scale: a method job over 10,000 simulated devices, all connected over TLS at once,
  with the hub's RSS per connection.

`python -m bench --quick` skips the 10,000-device job."""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from boardkit import mpy, profiles


def mpy_sizes() -> dict[str, dict[str, int]]:
    """Bytes of compiled .mpy per board architecture (boot.py/main.py stay source)."""
    sizes: dict[str, dict[str, int]] = {}
    seen_arch: set[str] = set()
    for name in profiles.available():
        profile = profiles.load(name)
        if profile.mpy_arch in seen_arch:
            continue
        seen_arch.add(profile.mpy_arch)
        with tempfile.TemporaryDirectory() as tmp:
            compiled = mpy.compile_for(profile, Path(tmp))
            sizes[profile.mpy_arch] = {item.board_path: item.size for item in compiled}
    return sizes


# What an ESP8266 leaves the agent with Wi-Fi and TLS up (boards/esp8266.json cites the sources).
ESP8266_AGENT_BUDGET = profiles.load("esp8266").agent_heap_budget
GOAL = 12 * 1024  # DESIGN 6: the goal over the interpreter's baseline


def print_mpy(sizes: dict[str, dict[str, int]]) -> None:
    print("Compiled device code (bytes)")
    print(f"{'file':40} " + " ".join(f"{arch:>10}" for arch in sizes))
    files = sorted({path for per_arch in sizes.values() for path in per_arch})
    for path in files:
        print(f"{path:40} " + " ".join(f"{sizes[arch].get(path, 0):10d}" for arch in sizes))
    print(f"{'total':40} " + " ".join(f"{sum(sizes[arch].values()):10d}" for arch in sizes))


def vm_heap(hub: Any, work: Path) -> dict[str, Any]:
    from bench.vmagent import run_agent

    uploads = {"f10k.bin": 10 * 1024, "f1m.bin": 1024 * 1024}
    runs = {kind: run_agent(hub, work / f"vm-board-{kind}", f"bench-vm-{kind}", uploads=uploads, timeout=300,
                            compiled=(kind == "mpy"))
            for kind in ("source", "mpy")}
    result: dict[str, Any] = {kind: run.as_dict() for kind, run in runs.items()}
    result["shims"] = ["ssl.SSLSocket.readinto single read (lib/iothub/http.py expects a partial read; a "
                       "blocking MicroPython readinto fills the buffer, so a keep-alive answer stalls 30 s)"]
    result["esp8266_agent_budget"] = ESP8266_AGENT_BUDGET
    result["goal"] = GOAL
    print("\nLive heap of the agent in the MicroPython 1.27 VM: bytes above the VM baseline after gc,")
    print("lib imported from source and from .mpy; TLS buffers are the parent's and not counted")
    print(f"  {'phase':28} {'source':>8} {'.mpy':>8}")
    for phase in runs["source"].phases:
        values = [runs[k].phases.get(phase, 0) for k in ("source", "mpy")]
        flag = f"  > {ESP8266_AGENT_BUDGET} B ESP8266 budget" if values[1] > ESP8266_AGENT_BUDGET else ""
        print(f"  {phase:28} {values[0]:8d} {values[1]:8d}{flag}")
    print(f"  {'highest at a poll()':28} {runs['source'].poll_peak:8d} {runs['mpy'].poll_peak:8d}")
    print(f"  {'highest seen':28} {runs['source'].highest:8d} {runs['mpy'].highest:8d}")
    for name in uploads:
        print(f"  heap growth during upload {name} (garbage made; no collection inside a VM call): "
              f"{runs['source'].upload_alloc.get(name, 0)} / {runs['mpy'].upload_alloc.get(name, 0)}")
    print(f"  VM baseline {runs['mpy'].baseline} B (interpreter alone {runs['mpy'].interpreter} B)")
    return result


def throughput(hub: Any, work: Path) -> dict[str, Any]:
    from bench import throughput as tp

    result = tp.compare(hub, work, messages=200)
    print("\nThroughput on one local hub (QoS 1 one at a time; 1 MB file in 4 KB blocks)")
    print(f"  {'':24} {'agent':>10} {'SDK':>10} {'ratio':>8}")
    for key, label in (("telemetry_msgs_per_s", "telemetry msg/s"), ("upload_mb_per_s", "upload MB/s")):
        print(f"  {label:24} {result['agent'][key]:10.2f} {result['sdk'][key]:10.2f} "
              f"{result['ratio_agent_over_sdk'][key]:8.2f}")
    return result


def unix_port(hub: Any, work: Path, sdk_upload_mb_per_s: float, vm_phases: dict[str, int]) -> dict[str, Any]:
    from bench.unixagent import measure
    from hostemu.unix.board_process import WORD_SCALE

    result = measure(hub, work)
    ratios = {phase: round(heap / vm_phases[phase], 3)
              for phase, heap in result["agent_phases_live_above_baseline"].items() if vm_phases.get(phase)}
    result["ratio_64bit_over_vm_32bit"] = ratios
    result["unix_tier_word_scale"] = WORD_SCALE
    sdk_seconds = result["sdk_upload_1mb_seconds"] = 1.048576 / sdk_upload_mb_per_s
    agent, bare = result["agent_phases_live_above_baseline"], result["umqtt_phases_live_above_baseline"]
    print("\nOn MicroPython's unix port (64-bit, mbedTLS, .mpy): live heap above the baseline after gc")
    print(f"  agent: {', '.join(f'{k} {v}' for k, v in agent.items())}")
    print(f"  umqtt.simple bare (connect + one QoS 1 publish, SAS made on the host): "
          f"{', '.join(f'{k} {v}' for k, v in bare.items())}")
    print(f"  agent after telemetry / umqtt.simple after its publish: "
          f"{result['ratio_agent_telemetry_over_umqtt_publish']:.1f}x")
    print(f"  smallest -X heapsize: agent (connect, telemetry, twin, method, 10 KB upload) "
          f"{result['smallest_heapsize_agent']}, umqtt.simple {result['smallest_heapsize_umqtt']} "
          f"({result['ratio_smallest_heapsize']:.1f}x)")
    print(f"  64-bit over 32-bit (the VM, .mpy), phase by phase: {min(ratios.values()):.2f}-"
          f"{max(ratios.values()):.2f}x; the unix tier scales a profile's heap by {WORD_SCALE}")
    rom = result["in_place"]
    print(f"  in place (ROMFS image at /rom: agent {rom['image_bytes']['agent']} B, umqtt.simple "
          f"{rom['image_bytes']['umqtt']} B): agent {', '.join(f'{k} {v}' for k, v in rom['agent_phases_live_above_baseline'].items())}")
    print(f"  in place, umqtt.simple: {', '.join(f'{k} {v}' for k, v in rom['umqtt_phases_live_above_baseline'].items())}")
    print(f"  in place, agent after telemetry / umqtt.simple after its publish: "
          f"{rom['ratio_agent_telemetry_over_umqtt_publish']:.1f}x "
          f"(files: {result['ratio_agent_telemetry_over_umqtt_publish']:.1f}x); goal 2x")
    print(f"  in place, smallest heap beside the image: agent {rom['smallest_heap_above_image_agent']}, umqtt.simple "
          f"{rom['smallest_heap_above_image_umqtt']} ({rom['ratio_smallest_heap']:.1f}x; "
          f"{rom['ratio_smallest_heap_over_umqtt_files']:.1f}x umqtt.simple from files)")
    timed = result["upload_1mb_seconds"]
    print(f"  1 MB upload in 4 KB blocks: agent on mbedTLS {timed['tcp_nodelay']:.2f} s "
          f"(with Nagle, as before the fix: {timed['nagle']:.2f} s); official SDK on CPython {sdk_seconds:.2f} s")
    return result


def unix_app(hub: Any, work: Path, umqtt_in_place: int) -> dict[str, Any]:
    from bench.unixapp import measure

    result = measure(hub, work)
    in_place = result["in_place"]["smallest_free_heap"]
    # Both on one basis: free heap above the baseline (interpreter, board modules, the image), in
    # place. umqtt.simple's floor is this run's (bench.unixagent). TLS buffers are outside the
    # GC heap on this port, so the firmware's figure itself is what the profile's budget (what an
    # ESP8266 leaves with Wi-Fi and one TLS connection up) is held against.
    result["umqtt_in_place_smallest_heap"] = umqtt_in_place
    result["ratio_in_place_over_umqtt"] = round(in_place / umqtt_in_place, 2)
    print(f"\nThe whole firmware as an {result['board']} on the unix port (64-bit): smallest free heap to boot, "
          f"connect and deliver telemetry")
    print(f"  from .mpy files {result['files']['smallest_free_heap']} B, in place from ROMFS "
          f"{in_place} B ({result['ratio_in_place_over_files']:.2f}x; the median of "
          f"{', '.join(str(v) for v in result['in_place']['per_hub'])} on {len(result['in_place']['per_hub'])} hubs)")
    print(f"  in place over umqtt.simple's floor in place on the same basis ({umqtt_in_place} B): "
          f"{result['ratio_in_place_over_umqtt']:.2f}x (goal 2x); the profile's agent_heap_budget x "
          f"{result['word_scale']} is {result['agent_heap_budget_64bit']} B "
          f"({in_place / result['agent_heap_budget_64bit']:.2f}x)")
    return result


def hub_scale(hub: Any, devices: int) -> dict[str, Any]:
    from localhub.testing.loadsim import run_method_job_report

    report = run_method_job_report(hub, devices)
    report["concurrent_tls_connections"] = report["answered"]  # all connected at once during the job
    print(f"\nLocal hub: method job over {devices} devices in {report['jobSeconds']:.2f} s "
          f"(connect {report['connectSeconds']:.1f} s); {report['answered']} TLS device connections held at once")
    if "hubRssConnectedBytes" in report:
        print(f"  hub RSS {report['hubRssBeforeBytes'] / 2**20:.0f} MB before, "
              f"{report['hubRssConnectedBytes'] / 2**20:.0f} MB with them connected: "
              f"{report['hubRssPerConnectionBytes'] / 1024:.1f} KB per idle TLS device connection")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="skip the 10,000-device hub job")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args(argv)
    from localhub.testing import HubProcess

    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.python_version()}",
        "reproduce": "make bench",
    }
    sizes = mpy_sizes()
    results["mpy_bytes"] = sizes
    results["mpy_total_bytes"] = {arch: sum(v.values()) for arch, v in sizes.items()}
    print_mpy(sizes)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        with HubProcess(work / "hub") as hub:
            results["vm_heap"] = vm_heap(hub, work)
            results["throughput"] = throughput(hub, work)
            results["unix_port"] = unix_port(hub, work, results["throughput"]["sdk"]["upload_mb_per_s"],
                                             results["vm_heap"]["mpy"]["phases_live_above_baseline"])
            results["unix_app"] = unix_app(
                hub, work, results["unix_port"]["in_place"]["smallest_free_heap_above_baseline"]["umqtt"])
            if not args.quick:
                results["hub_scale"] = hub_scale(hub, args.devices)
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten to {args.out} ({results['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
