"""Long polls, the hub's end: "what is newer than seq N" is answered at once, or as soon as
something arrives (telemetry, upload notifications). The client's end is client/longpoll.py."""

from __future__ import annotations

import asyncio
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
