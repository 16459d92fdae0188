"""`make run`'s demo, non-interactively: hub, device, config, board, live telemetry, twin and a
method call, then a clean stop with no process left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_shows_telemetry_twin_and_a_method_then_stops_everything(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hostemu.demo", "--board", "esp8266", "--state", str(tmp_path),
                             "--duration", "15"], capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    pids = re.search(r"hub pid (\d+), board pid (\d+)", out)
    summary = re.search(r'telemetry: (\d+) messages; method reboot: \{"status": 200.*bootCount (\d+)', out, re.S)
    assert pids and summary, out
    assert int(summary.group(1)) >= 4
    assert not _alive(int(pids.group(1))) and not _alive(int(pids.group(2)))
    assert (tmp_path / "esp8266" / "config.json").exists()
    assert "SharedAccessKey=" not in out
