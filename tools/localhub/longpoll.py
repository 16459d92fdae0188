"""Long polls, both ends: the hub answers "what is newer than seq N" at once or as soon as
something arrives (telemetry, upload notifications); a client collects until it has enough."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, TypeVar

T = TypeVar("T")


async def rows_or_wait(fetch: Callable[[], list[T]], new_event: Callable[[], asyncio.Event], wait: float) -> list[T]:
    """``fetch()``; while it finds nothing, wait up to ``wait`` seconds for ``new_event()`` (the
    event the writer sets and replaces on every new row) and fetch again."""
    rows = fetch()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not rows and (remaining := deadline - loop.time()) > 0:
        try:
            await asyncio.wait_for(new_event().wait(), remaining)
        except asyncio.TimeoutError:
            break
        rows = fetch()
    return rows


def collect(read: Callable[[int, float], tuple[list[T], int]], count: int, timeout: float, what: str) -> list[T]:
    """Call ``read(after, wait)`` (one long poll: rows and the next ``after``) until ``count``
    rows came; TimeoutError after ``timeout`` seconds. No sleeping: the hub holds each poll."""
    deadline = time.monotonic() + timeout
    out: list[T] = []
    after = 0
    while len(out) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{len(out)} of {count} {what} after {timeout} s")
        rows, after = read(after, min(remaining, 10))
        out.extend(rows)
    return out
