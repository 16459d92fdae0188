"""Helpers for the firmware tests: a provisioned board folder for a local-hub device, firmware
packages in the app's MPYFW1 format, and packages served from the hub's blob storage."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from boardkit import provision
from localhub.testing import HubProcess

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "firmware" / "app"

# Fast reconnects so an outage test does not wait out a 100 s backoff.
FAST = {"reconnect_min_ms": 200, "reconnect_max_ms": 1500, "reconnect_jitter_ms": 200}


def provision_board(hub: HubProcess, folder: Path, device_id: str, interval: int = 10,
                    **extra: Any) -> Path:
    """Create ``device_id`` on ``hub`` and write config.json + ca.der into the board folder."""
    cs = hub.create_device(device_id)
    provision.write_config(folder, cs, hub.ca_pem, "hostemu", "hostemu", interval)
    if extra:
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text())
        config.update(extra)
        config_path.write_text(json.dumps(config))
    return folder


def app_version(folder: Path) -> str:
    """The app version on a board folder: from app/version.py, or from app/version.mpy where the
    board got compiled code (a firmware update brings source again)."""
    import re

    source = folder / "app" / "version.py"
    if source.exists():
        found = re.search(r'VERSION = "([^"]+)"', source.read_text())
    else:
        found = re.search(rb"(\d+\.\d+\.\d+)", (folder / "app" / "version.mpy").read_bytes())
    assert found, f"no version in {folder / 'app'}"
    value = found.group(1)
    return value.decode() if isinstance(value, bytes) else value


def bodies(hub: HubProcess, device_id: str) -> list[dict[str, Any]]:
    return [json.loads(m["body"]) for m in hub.telemetry(device_id)]


def reported(hub: HubProcess, device_id: str) -> dict[str, Any]:
    return hub.get_twin(device_id)["properties"]["reported"]


def build_package(version: str, files: dict[str, bytes] | None = None) -> bytes:
    """An MPYFW1 package of the repository's app with ``version``; ``files`` adds or replaces."""
    content: dict[str, bytes] = {}
    for path in sorted(APP_DIR.rglob("*.py")):
        if "__pycache__" not in path.parts:
            content[path.relative_to(APP_DIR).as_posix()] = path.read_bytes()
    content["version.py"] = f'VERSION = "{version}"\n'.encode()
    content.update(files or {})
    manifest = {"version": version, "files": [[name, len(data)] for name, data in content.items()]}
    return b"MPYFW1\n" + json.dumps(manifest).encode() + b"\n" + b"".join(content.values())


def serve_package(hub: HubProcess, name: str, data: bytes | None) -> str:
    """Put ``data`` in the hub's blob storage (Azurite) and return a read-only SAS URL to it
    (``data=None``: a valid URL to a blob that does not exist)."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    service = hub.blob_service_client()
    container = service.get_container_client("firmware")
    if not container.exists():
        container.create_container()
    if data is not None:
        container.upload_blob(name, data, overwrite=True)
    sas = generate_blob_sas(service.account_name, "firmware", name, account_key=service.credential.account_key,
                            permission=BlobSasPermissions(read=True),
                            expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    return f"{service.url.rstrip('/')}/firmware/{name}?{sas}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_for(check: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``check()`` (a hub query) until it returns something truthy; raise on timeout."""
    import time

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")


class Board:
    """``hostemu.testing.BoardProcess`` whose exit is a power cut (SIGKILL to the process group).

    Why: ``BoardProcess.stop()`` sends SIGTERM, and the supervisor's SIGTERM handler re-enters
    ``Popen.wait`` while the interrupted ``wait`` holds its lock, so every stop of a board that
    runs forever costs the 10 s grace period. A board loses power without ceremony anyway.
    """

    def __init__(self, *args: Any, runtime: str = "cpython", **kwargs: Any) -> None:
        from hostemu.testing import BoardProcess

        # On MicroPython's unix port the board gets .mpy files, as `boardkit deploy` lays them out.
        kwargs.setdefault("compiled", runtime == "unix")
        self.process = BoardProcess(*args, runtime=runtime, **kwargs)

    def __enter__(self) -> Any:
        return self.process.start()

    def __exit__(self, *exc: object) -> None:
        power_off(self.process)


def power_off(board: Any) -> None:
    import os
    import signal

    proc = board._process
    if proc is not None and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
    board.stop()
