"""A bounded ring of telemetry messages in one file on flash: survives a reset, drops the oldest
when full and counts the drops.

File layout (little endian)::

    header  16 bytes: b"OQ1\\0", slots u16, slot_bytes u16, head u16, count u16, drops u32
    slot i  slot_bytes: length u16 + message bytes (at most slot_bytes - 2)

The file is created at full size once, so the flash it needs is known up front and writing never
grows it. A push writes one slot then the header; a pop writes the header only. A reset between
the two writes of a push into a full ring can replay the new message in the oldest's place
(at-least-once, like the rest of the telemetry path). A file whose geometry differs from the
configuration (or is damaged) is started afresh.
"""

import struct

_MAGIC = b"OQ1\x00"
_HEAD = "<4sHHHHI"
_HEAD_LEN = 16


class FlashQueue:
    def __init__(self, path, slots, slot_bytes):
        self.path = path
        self.slots = slots
        self.slot_bytes = slot_bytes
        self._buf = bytearray(slot_bytes)  # the one buffer every slot goes through
        self.head = 0
        self.count = 0
        self.drops = 0
        self.oversize = 0
        if not self._load():
            self._create()

    def _load(self):
        try:
            with open(self.path, "rb") as f:
                raw = f.read(_HEAD_LEN)
                if len(raw) != _HEAD_LEN:
                    return False
                magic, slots, size, head, count, drops = struct.unpack(_HEAD, raw)
                if magic != _MAGIC or slots != self.slots or size != self.slot_bytes:
                    return False
                if head >= slots or count > slots:
                    return False
                f.seek(_HEAD_LEN + slots * size - 1)
                if len(f.read(1)) != 1:
                    return False
        except OSError:
            return False
        self.head, self.count, self.drops = head, count, drops
        return True

    def _create(self):
        self.head = self.count = 0
        with open(self.path, "wb") as f:
            f.write(struct.pack(_HEAD, _MAGIC, self.slots, self.slot_bytes, 0, 0, self.drops))
            zero = bytearray(self.slot_bytes)
            for _ in range(self.slots):
                f.write(zero)

    def _write_header(self, f):
        f.seek(0)
        f.write(struct.pack(_HEAD, _MAGIC, self.slots, self.slot_bytes, self.head, self.count, self.drops))

    def __len__(self):
        return self.count

    def push(self, data):
        """Append ``data`` (bytes); the oldest message is dropped (and counted) when full.
        A message longer than a slot is refused: False, counted in ``oversize``."""
        n = len(data)
        if n > self.slot_bytes - 2:
            self.oversize += 1
            return False
        buf = self._buf
        struct.pack_into("<H", buf, 0, n)
        buf[2 : 2 + n] = data
        index = (self.head + self.count) % self.slots
        if self.count == self.slots:
            self.head = (self.head + 1) % self.slots
            self.drops += 1
        else:
            self.count += 1
        with open(self.path, "r+b") as f:
            f.seek(_HEAD_LEN + index * self.slot_bytes)
            f.write(memoryview(buf)[: 2 + n])
            self._write_header(f)
        return True

    def peek(self):
        """The oldest message as bytes (None if empty)."""
        if not self.count:
            return None
        buf = self._buf
        with open(self.path, "rb") as f:
            f.seek(_HEAD_LEN + self.head * self.slot_bytes)
            f.readinto(buf)
        n = struct.unpack_from("<H", buf, 0)[0]
        if n > self.slot_bytes - 2:  # damaged slot: skip it rather than send garbage
            return b""
        return bytes(buf[2 : 2 + n])

    def pop(self):
        if not self.count:
            return
        self.head = (self.head + 1) % self.slots
        self.count -= 1
        with open(self.path, "r+b") as f:
            self._write_header(f)
