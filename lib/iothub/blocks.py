"""Blob block ids and the Put Block List body, streamed into a caller's buffer (pure).

Block ids must all have the same length within a blob: base64 of a 6-digit index (8 chars,
alphabet ``A-Za-z0-9`` only for digits, so safe in a URL as is). 50,000 blocks at most.
"""

try:
    import binascii
except ImportError:  # pragma: no cover
    import ubinascii as binascii

MAX_BLOCKS = 50000
ID_LEN = 8
_HEAD = b'<?xml version="1.0" encoding="utf-8"?><BlockList>'
_TAIL = b"</BlockList>"
_OPEN = b"<Latest>"
_CLOSE = b"</Latest>"
_ENTRY = len(_OPEN) + ID_LEN + len(_CLOSE)


def block_id(index):
    """The id of block ``index`` (0-based) as str, e.g. 0 -> ``MDAwMDAw``."""
    return binascii.b2a_base64(("%06d" % index).encode())[:-1].decode()


def block_list_length(count):
    """Content-Length of the block-list body for ``count`` blocks."""
    return len(_HEAD) + count * _ENTRY + len(_TAIL)


def write_block_list(write, count, buf, start=0):
    """Stream the block-list XML through ``write(memoryview)`` using ``buf`` (>= 64 bytes past
    ``start``) as the only scratch space; memory does not grow with ``count``. ``buf[:start]``
    (e.g. the HTTP request head) goes out in front of the first piece."""
    mv = memoryview(buf)
    size = len(buf)
    n = start + len(_HEAD)
    buf[start:n] = _HEAD
    for i in range(count):
        if n + _ENTRY > size:
            write(mv[:n])
            n = 0
        buf[n : n + 8] = _OPEN
        bid = binascii.b2a_base64(("%06d" % i).encode())
        buf[n + 8 : n + 8 + ID_LEN] = bid[:ID_LEN]
        buf[n + 8 + ID_LEN : n + _ENTRY] = _CLOSE
        n += _ENTRY
    if n + len(_TAIL) > size:
        write(mv[:n])
        n = 0
    buf[n : n + len(_TAIL)] = _TAIL
    write(mv[: n + len(_TAIL)])
