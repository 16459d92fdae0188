"""The stream methods MicroPython's sockets share, over one `_stream_recv(size)` primitive that
returns bytes, b"" at end of stream, or None when a non-blocking read has nothing to give.

MicroPython's stream reads differ from CPython's recv: on a blocking socket `read(n)` and
`readinto(buf)` return only when they have all `n` bytes (the buffer is full) or the stream
ended, and a timeout on the way raises OSError(ETIMEDOUT), losing what had arrived
(`mp_stream_rw` without MP_STREAM_RW_ONCE, `mp_stream_read_exactly`). A non-blocking read
returns what there is, or None.
"""


class StreamReads:
    def _stream_recv(self, size):
        raise NotImplementedError

    def _host_socket(self):
        raise NotImplementedError

    def _is_blocking(self):
        return self._host_socket().gettimeout() != 0.0

    def _read_exactly(self, size):
        """Up to `size` bytes: all of them on a blocking stream unless it ends first."""
        first = self._stream_recv(size)
        if not first or len(first) == size or not self._is_blocking():
            return first
        data = bytearray(first)
        while len(data) < size:
            more = self._stream_recv(size - len(data))
            if not more:
                break
            data += more
        return bytes(data)

    def read(self, size=-1):
        if size is not None and size >= 0:
            return self._read_exactly(size)
        chunks = []
        while True:
            chunk = self._stream_recv(4096)
            if chunk is None:
                return b"".join(chunks) if chunks else None
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def readinto(self, buf, nbytes=None):
        view = memoryview(buf)
        if nbytes is not None:
            view = view[:nbytes]
        data = self._read_exactly(len(view))
        if data is None:
            return None
        view[: len(data)] = data
        return len(data)

    def readline(self):
        line = bytearray()
        while True:
            byte = self._stream_recv(1)
            if not byte:
                return bytes(line)
            line += byte
            if byte == b"\n":
                return bytes(line)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
