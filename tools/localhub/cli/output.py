"""What every `localhub` command shares: the console, JSON output, JSON options."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console

console = Console(highlight=False)


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data))


def json_option(value: str | None, what: str) -> Any:
    """A command-line value that must be JSON; None stays None."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc}") from exc
