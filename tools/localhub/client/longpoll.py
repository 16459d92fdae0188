"""Long polls, the client's end: poll until enough rows came (the hub holds each poll until
something arrives, so nothing here sleeps)."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


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
