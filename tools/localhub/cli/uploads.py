"""``localhub upload ...``: file-upload notifications and the storage behind them.

Registered on the main group by main.py. Commands talk to the running hub (service SAS from the
state folder) through :mod:`localhub.client.upload`; ``obj`` is main.py's context object.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..client import upload as upload_client


def _line(n: dict[str, Any]) -> str:
    size = "-" if n["blobSizeInBytes"] is None else str(n["blobSizeInBytes"])
    ok = "success" if n["isSuccess"] else "failure"
    return (f"{n['enqueuedTimeUtc']}\t{n['deviceId']}\t{n['blobName']}\t{size}\t{ok}"
            f"\t{n['statusCode'] if n['statusCode'] is not None else '-'}")


@click.group("upload")
def upload() -> None:
    """File uploads from devices (blob storage: Azurite or an Azure account)."""


@upload.command("notifications")
@click.option("--device", "device_id", help="Only this device.")
@click.option("--follow", "-f", is_flag=True, help="Keep waiting for new notifications.")
@click.option("--count", type=int, default=0, help="With --follow: stop after this many.")
@click.option("--timeout", type=float, default=0, help="With --follow: stop after this many s.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def notifications(obj: Any, device_id: str | None, follow: bool, count: int, timeout: float,
                  as_json: bool) -> None:
    """List upload notifications (time, device, blob name, size, success, status code)."""
    client = obj.require_client()
    after, seen = 0, 0
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while True:
            wait = 0.0
            if follow:
                wait = 10.0 if deadline is None else max(0.0, min(10.0, deadline - time.monotonic()))
            rows, after = upload_client.read_notifications(client, after, device_id, wait)
            for n in rows:
                click.echo(json.dumps(n) if as_json else _line(n))
                seen += 1
                if follow and count and seen >= count:
                    return
            if not follow and not rows:
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
    except KeyboardInterrupt:
        return


@upload.command("storage")
@click.pass_obj
def storage(obj: Any) -> None:
    """Print the storage connection string and container (for Storage Explorer, az storage)."""
    click.echo(json.dumps(upload_client.storage_info(obj.require_client()), indent=2))
