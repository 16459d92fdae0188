"""Request-id tracking for twin requests (``$rid``): bounded, with deadlines in ticks.

The caller passes the clock as ``now`` (ticks_ms values) and a ``diff(a, b)`` that computes
``a - b`` across tick wrap-around (``time.ticks_diff`` on MicroPython).
"""

from iothub.errors import ConfigError


def _plain_diff(a, b):
    return a - b


class Pending:
    """Outstanding requests keyed by rid. ``add`` fails when ``limit`` are already waiting."""

    def __init__(self, limit=8, diff=None):
        self._limit = limit
        self._diff = diff or _plain_diff
        self._next = 0
        self._items = {}  # rid -> (kind, callback, deadline, body)

    def __len__(self):
        return len(self._items)

    def add(self, kind, callback, now, timeout_ms, body=None):
        """Register a request; return its rid (a short decimal string). ``body`` is kept until
        the answer, so a request lost with the connection can be made again (``clear``)."""
        if len(self._items) >= self._limit:
            raise ConfigError("too many requests in flight (%d)" % self._limit)
        self._next = (self._next + 1) & 0x3FFFFFFF
        rid = str(self._next)
        self._items[rid] = (kind, callback, now + timeout_ms, body)
        return rid

    def pop(self, rid):
        """The ``(kind, callback)`` of ``rid`` and forget it; ``None`` if unknown (late/foreign)."""
        item = self._items.pop(rid, None)
        if item is None:
            return None
        return item[0], item[1]

    def expired(self, now):
        """Remove and return ``[(rid, kind, callback), ...]`` whose deadline has passed."""
        if not self._items:
            # The session asks at every poll: with nothing outstanding, allocate nothing.
            return ()
        out = []
        for rid in list(self._items):
            kind, cb, deadline, _ = self._items[rid]
            if self._diff(now, deadline) >= 0:
                del self._items[rid]
                out.append((rid, kind, cb))
        return out

    def clear(self):
        """Forget everything; return the dropped ``[(rid, kind, callback, body), ...]``, oldest
        first (MicroPython's dict keeps no order: sorted by rid)."""
        out = [(rid, v[0], v[1], v[3]) for rid, v in self._items.items()]
        self._items = {}
        out.sort(key=lambda item: int(item[0]))
        return out
