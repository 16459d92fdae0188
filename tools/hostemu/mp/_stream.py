"""The stream methods MicroPython's sockets share, over one `_stream_recv(size)` primitive that
returns bytes, b"" at end of stream, or None when a non-blocking read has nothing to give."""


class StreamReads:
    def _stream_recv(self, size):
        raise NotImplementedError

    def read(self, size=-1):
        if size is not None and size >= 0:
            return self._stream_recv(size)
        chunks = []
        while True:
            chunk = self._stream_recv(4096)
            if chunk is None:
                return b"".join(chunks) if chunks else None
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

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
