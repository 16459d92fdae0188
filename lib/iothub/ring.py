"""A bounded FIFO (ring) that drops the oldest item when full and counts what it dropped."""


class Ring:
    def __init__(self, size):
        if size < 1:
            size = 1
        self._items = [None] * size
        self._head = 0
        self._n = 0
        self.drops = 0

    def __len__(self):
        return self._n

    def push(self, item):
        """Append; if full, the oldest item is dropped (and counted) to make room."""
        size = len(self._items)
        if self._n == size:
            self._items[self._head] = None
            self._head = (self._head + 1) % size
            self._n -= 1
            self.drops += 1
        self._items[(self._head + self._n) % size] = item
        self._n += 1

    def push_front(self, item):
        """Put an item back at the head (it is older than every queued one). If full, that
        item is the oldest, so it is the one dropped: returns False."""
        size = len(self._items)
        if self._n == size:
            self.drops += 1
            return False
        self._head = (self._head - 1) % size
        self._items[self._head] = item
        self._n += 1
        return True

    def peek(self):
        return self._items[self._head] if self._n else None

    def pop(self):
        """Remove and return the oldest item (None if empty)."""
        if not self._n:
            return None
        item = self._items[self._head]
        self._items[self._head] = None
        self._head = (self._head + 1) % len(self._items)
        self._n -= 1
        return item
