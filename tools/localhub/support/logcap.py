"""A bound on log volume: the same message from the same logger at most ``burst`` times a
window; the rest are counted, and reported in one line with the first record after the window.

Under abuse (a flood of broken TLS handshakes, malformed requests) asyncio and aiohttp log one
traceback per connection; that grew the log 24 MB in 18 s. The cap keeps a log readable and a
disk from filling while the first occurrences, with their tracebacks, are still there.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

BURST = 20
WINDOW = 60.0


class RepeatCap(logging.Filter):
    def __init__(self, handler: logging.Handler, burst: int = BURST, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.handler = handler
        self.burst = burst
        self.window = window
        self.clock = clock
        self._window_start = clock()
        self._seen: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        if now - self._window_start >= self.window:
            ended, self._seen, self._window_start = self._seen, {}, now
            self._report_suppressed(ended)
        key = (record.name, str(record.msg))  # the template, so each client's details count once
        count = self._seen.get(key, 0) + 1
        self._seen[key] = count
        return count <= self.burst

    def _report_suppressed(self, ended: dict[tuple[str, str], int]) -> None:
        for (name, msg), count in ended.items():
            if count > self.burst:
                self.handler.handle(logging.LogRecord(
                    name, logging.WARNING, __file__, 0,
                    "%d more like this in %.0f s, not logged: %s",
                    (count - self.burst, self.window, msg[:200]), None))


def install(handler: logging.Handler, burst: int = BURST, window: float = WINDOW) -> RepeatCap:
    cap = RepeatCap(handler, burst, window)
    handler.addFilter(cap)
    return cap
