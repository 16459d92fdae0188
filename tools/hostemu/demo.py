"""`make run`: the whole story on one laptop, no board and no Azure account needed.

1. starts a local IoT Hub (and, on the first upload, its blob storage) on a free loopback address
   with unprivileged ports (MQTT 8883, HTTPS 8443);
2. creates a demo device and writes its config.json + ca.der into a board folder
   (``state/demo/<board>``) with ``boardkit.provision``;
3. runs the firmware on the host emulation layer (``hostemu run``, the repository's firmware
   copied over what the folder held);
4. shows live: telemetry as a back end reads it (from the hub's Event Hub-compatible endpoint,
   over AMQP, as ``localhub monitor`` does), the device twin's reported properties, a desired
   property patch being acknowledged, and a direct method call (``reboot``) with its answer;
5. Ctrl-C (or ``--duration`` seconds) stops the board and the hub: their whole process groups, so
   nothing is left running.

    python -m hostemu.demo --board esp32 [--duration 30] [--state state/demo]

Exit status with ``--duration``: 0 if telemetry arrived and the method was answered 200, else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from boardkit import profiles, provision
from localhub.client import eventhub_reader
from localhub.client.hub_client import HubRequestError
from localhub.storage import state as hub_state
from localhub.testing import HubProcess, free_loopback_host

MQTT_PORT = 8883
HTTPS_PORT = 8443  # not 443: `make run` must work without root
DEVICE_PREFIX = "demo-"
TELEMETRY_INTERVAL = 5  # seconds, in config.json; the demo then asks for 2 through the twin
DESIRED_INTERVAL = 2
METHOD_AFTER_MESSAGES = 4  # invoke the method once this many messages arrived


@dataclass
class DemoState:
    """What the live view shows; filled by the polling loop."""

    messages: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=8))
    received: int = 0
    reported: dict[str, Any] = field(default_factory=dict)
    desired_version: int | None = None
    method_answer: dict[str, Any] | None = None
    method_error: str | None = None
    console: deque[str] = field(default_factory=lambda: deque(maxlen=8))


def _device_connection_string(hub: HubProcess, device_id: str) -> str:
    try:
        cs = hub.create_device(device_id)
    except HubRequestError as exc:
        if exc.status != 409:
            raise
        cs = hub_state.device_connection_string(hub.host, device_id, hub.device_key(device_id))
    # HTTPS (file upload, firmware packages on the hub's storage) is on HTTPS_PORT: as in the
    # official SDK, a port in GatewayHostName is the HTTPS one; MQTT uses config "mqtt_port".
    return f"{cs};GatewayHostName={hub.host}:{hub.https_port}"


def _start_board(board: str, folder: Path, log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")
    try:
        # Own session: the board and the supervisor that restarts it are stopped as one group.
        return subprocess.Popen([sys.executable, "-m", "hostemu", "run", "--board", board, "--fs", str(folder),
                                 "--sync"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    finally:
        log.close()


def _stop_group(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # a board loses power without ceremony anyway
        proc.wait(5)
    except ProcessLookupError:
        pass


def _tail(path: Path, keep: deque[str]) -> None:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return
    keep.clear()
    keep.extend(line[:160] for line in lines[-keep.maxlen:] if keep.maxlen)


def _render(device_id: str, hub: HubProcess, view: DemoState) -> Group:
    table = Table(title=f"telemetry from {device_id} ({view.received} received)", expand=True)
    for column in ("boot", "seq", "time (device)", "temperature", "humidity"):
        table.add_column(column)
    for message in view.messages:
        body = message.get("body") or {}
        stamp = time.strftime("%H:%M:%S", time.gmtime(body.get("ts", 0)))
        table.add_row(str(body.get("boot")), str(body.get("seq")), stamp, str(body.get("temperature")),
                      str(body.get("humidity")))
    reported = view.reported
    twin = Table.grid(padding=(0, 2))
    twin.add_column(style="bold")
    twin.add_column()
    device = reported.get("device", {})
    rows = [
        ("app", json.dumps(reported.get("app", {}))),
        ("firmware", json.dumps(reported.get("firmware", {}).get("fwUpdateStatus"))),
        ("boot / reset", f"{device.get('bootCount')} / {device.get('resetCause')}"),
        ("lastReboot", str(reported.get("iothubDM", {}).get("reboot", {}).get("lastReboot"))),
        ("connectivity", json.dumps(reported.get("connectivity", {}))),
        ("queue", json.dumps(reported.get("queue", {}))),
        ("telemetryInterval", json.dumps(reported.get("telemetryInterval"))),
    ]
    for name, value in rows:
        twin.add_row(name, value)
    if view.method_answer is not None:
        method = Text(f"reboot -> {json.dumps(view.method_answer)}", style="green")
    elif view.method_error:
        method = Text(f"reboot -> {view.method_error}", style="red")
    else:
        method = Text(f"reboot will be invoked after {METHOD_AFTER_MESSAGES} messages", style="dim")
    return Group(
        Text(f"local IoT Hub on {hub.host} (MQTT {hub.mqtt_port}, HTTPS {hub.https_port}); Ctrl-C stops",
             style="bold cyan"),
        table,
        Panel(twin, title="device twin: reported"),
        Panel(method, title="direct method"),
        Panel(Text("\n".join(view.console)), title="board console (tail)"),
    )


class TelemetryStream:
    """The device's telemetry read from the hub's Event Hub-compatible endpoint in a thread of
    its own (Proton's reactor blocks); what was enqueued before ``since`` (earlier runs) is
    left out. The thread ends when the hub stops."""

    def __init__(self, hub: HubProcess, device_id: str, since: float) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.error: str | None = None
        self._device_id = device_id
        self._since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))
        self._thread = threading.Thread(target=self._read, args=(hub.eventhub_connection_string(),
                                                                 str(hub.ca_path)), daemon=True)
        self._thread.start()

    def _read(self, connection_string: str, ca_path: str) -> None:
        def take(event: dict[str, Any]) -> bool:
            if event["deviceId"] == self._device_id and (event["enqueuedTime"] or "") >= self._since:
                self.events.put(event)
            return True

        try:
            eventhub_reader.read_events(connection_string, take, ca_path=ca_path, from_start=True)
        except eventhub_reader.EventHubError as exc:
            self.error = str(exc)

    def poll(self, view: DemoState, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                message = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            try:
                message["body"] = json.loads(message.get("body") or "{}")
            except ValueError:
                message["body"] = {}
            view.messages.append(message)
            view.received += 1


def run_demo(board: str, state_dir: Path, duration: float | None, console: Console) -> int:
    profile = profiles.load(board)
    state_dir.mkdir(parents=True, exist_ok=True)
    board_dir = state_dir / profile.name
    device_id = DEVICE_PREFIX + profile.name
    view = DemoState()
    hub = HubProcess(state_dir / "hub", host=free_loopback_host((MQTT_PORT, HTTPS_PORT, 5671)), mqtt_port=MQTT_PORT,
                     https_port=HTTPS_PORT)
    board_proc: subprocess.Popen[bytes] | None = None
    log_path = state_dir / f"{profile.name}.console.log"
    log_path.write_text("")
    try:
        console.print(f"starting the local hub on {hub.host} ...")
        hub.start()
        cs = _device_connection_string(hub, device_id)
        provision.write_config(board_dir, cs, hub.ca_pem, "hostemu", "hostemu", TELEMETRY_INTERVAL)
        config_path = board_dir / "config.json"
        config = json.loads(config_path.read_text())
        config.update({"mqtt_port": MQTT_PORT, "report_interval": 10})
        config_path.write_text(json.dumps(config, indent=1))
        console.print(f"device {device_id}: {config_path} written (key not shown); starting the {profile.name} board")
        # Only what this run's board sends counts (the hub keeps telemetry of earlier runs).
        telemetry = TelemetryStream(hub, device_id, time.time() - 1)
        board_proc = _start_board(str(profile.source), board_dir, log_path)
        console.print(f"hub pid {hub.proc.pid if hub.proc else None}, board pid {board_proc.pid}")
        hub.update_twin(device_id, {"properties": {"desired": {"telemetryInterval": DESIRED_INTERVAL}}})
        started = time.monotonic()
        invoked = False
        # On a terminal a live view; otherwise (a pipe, a log) one line per event.
        live = Live(_render(device_id, hub, view), console=console, refresh_per_second=4) if console.is_terminal else None
        with live or contextlib.nullcontext():
            while duration is None or time.monotonic() - started < duration:
                if board_proc.poll() is not None:
                    view.method_error = view.method_error or f"board exited with {board_proc.returncode}"
                    break
                seen = view.received
                telemetry.poll(view, 0.5)
                view.reported = hub.get_twin(device_id)["properties"]["reported"]
                if live is None:
                    for message in list(view.messages)[len(view.messages) - (view.received - seen):]:
                        console.print(f"telemetry {json.dumps(message['body'])} {json.dumps(message.get('properties', {}))}", soft_wrap=True)
                if not invoked and view.received >= METHOD_AFTER_MESSAGES:
                    invoked = True
                    try:
                        view.method_answer = hub.invoke_method(device_id, "reboot", None, 20)
                    except HubRequestError as exc:
                        view.method_error = f"{exc.status} {exc}"
                    if live is None:
                        console.print(f"method reboot -> {json.dumps(view.method_answer) if view.method_answer else view.method_error}")
                _tail(log_path, view.console)
                if live is not None:
                    live.update(_render(device_id, hub, view))
        answered = view.method_answer is not None and view.method_answer.get("status") == 200
        console.print(f"telemetry: {view.received} messages; method reboot: "
                      f"{json.dumps(view.method_answer) if view.method_answer else view.method_error}; "
                      f"reported bootCount {view.reported.get('device', {}).get('bootCount')}")
        return 0 if view.received and answered else 1
    except KeyboardInterrupt:
        console.print("stopping ...")
        return 0
    finally:
        _stop_group(board_proc)
        hub.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hostemu.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", default="esp32", help="board profile name (boards/NAME.json)")
    parser.add_argument("--state", type=Path, default=Path("state/demo"), help="hub state and board folders")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)

    # SIGTERM (a CI runner, `kill`) stops as cleanly as Ctrl-C.
    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    return run_demo(args.board, args.state.resolve(), args.duration, Console())


if __name__ == "__main__":
    sys.exit(main())
