"""A small streaming HTTP/1.1 client for the file-upload REST calls and blob PUTs.

- Request bodies are either given whole (short JSON) or streamed by the caller with ``send()``
  after ``request(..., length=n)``: always ``Content-Length``, never chunked (Azurite refuses
  chunked uploads).
- Responses: status line, the few headers that matter (``content-length``,
  ``transfer-encoding``, ``connection``, ``content-type``), bodies by Content-Length, chunked,
  or until the server closes. All reads go through one preallocated buffer.
- Keep-alive: the connection is reused while the server allows it (HTTP/1.1 without
  ``Connection: close``) and the previous response was read to its end.
"""

from iothub.errors import ConfigError, ProtocolError

_ETIMEDOUT = 110
_POLLIN = 0x0001  # select.POLLIN / POLLOUT: the same values on MicroPython and CPython
_POLLOUT = 0x0004
_KEEP = ("content-length", "transfer-encoding", "connection", "content-type", "location")


class HTTPResponse:
    """One response; read its body with ``readinto``/``read``/``drain`` before the next request."""

    def __init__(self, conn, status, headers, mode, left):
        self._conn = conn
        self.status = status
        self.headers = headers  # lower-case name -> value, only the names in _KEEP
        self._mode = mode  # 0 done, 1 content-length, 2 chunked, 3 until close
        self._left = left  # bytes left in the body (1) or in the current chunk (2)

    def readinto(self, buf, n=-1):
        """Read up to ``n`` body bytes into ``buf``; 0 at the end of the body."""
        if n < 0:
            n = len(buf)
        c = self._conn
        mv = memoryview(buf)
        if self._mode == 2 and self._left == 0:
            self._next_chunk()
        if self._mode == 0 or n == 0:
            return 0
        if self._mode != 3 and n > self._left:
            n = self._left
        try:
            got = c._read_body(mv[:n])
        except Exception:
            c.close()
            self._mode = 0
            raise
        if got == 0:
            if self._mode != 3:
                raise ProtocolError("connection closed inside the body")
            self._mode = 0
            c._done(False)
            return 0
        if self._mode == 1:
            self._left -= got
            if self._left == 0:
                self._mode = 0
                c._done(True)
        elif self._mode == 2:
            self._left -= got
            if self._left == 0:
                c._expect_crlf()
        return got

    def _next_chunk(self):
        c = self._conn
        line = c._readline()
        semi = line.find(b";")
        if semi >= 0:
            line = line[:semi]
        try:
            size = int(line.strip(), 16)
        except ValueError:
            raise ProtocolError("bad chunk size")
        if size < 0:
            raise ProtocolError("bad chunk size")
        if size == 0:
            while c._readline():  # trailer headers, up to the empty line
                pass
            self._mode = 0
            c._done(True)
        self._left = size

    def read(self, limit=4096):
        """The rest of the body as bytes; ``ProtocolError`` if longer than ``limit``."""
        out = bytearray()
        chunk = bytearray(256)
        while True:
            n = self.readinto(chunk)
            if not n:
                return bytes(out)
            if len(out) + n > limit:
                raise ProtocolError("response body longer than %d bytes" % limit)
            out.extend(chunk[:n] if n < len(chunk) else chunk)

    def json(self, limit=4096):
        import json

        try:
            return json.loads(self.read(limit))
        except ValueError:
            raise ProtocolError("response body is not JSON")

    def drain(self):
        """Read and discard the rest of the body (so the connection can be reused)."""
        scratch = self._conn._scratch
        while self.readinto(scratch):
            pass


class HTTPConnection:
    """A connection to one ``host:port``; ``ctx`` is an SSLContext (None for plain TCP).

    ``host_header`` overrides the ``Host`` header (IoT Hub gateways want the hub's name).
    """

    def __init__(
        self, host, port=443, ctx=None, timeout=30, sock_factory=None, bufsize=512, host_header=None
    ):
        if bufsize < 128:
            raise ConfigError("bufsize must be at least 128")
        self.host = host
        self.port = port
        self._ctx = ctx
        self._timeout = timeout
        self._sock_factory = sock_factory
        self._host_header = host_header or (host if port in (80, 443) else host + ":" + str(port))
        self.sock = None
        self._buf = bytearray(bufsize)
        self._mv = memoryview(self._buf)
        self._pos = 0
        self._end = 0
        self._scratch = bytearray(128)
        self._line = bytearray(256)
        self._reusable = False
        self._busy = None  # the response whose body is not read to the end
        self.opened = 0  # connections opened (tests check keep-alive with it)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except Exception:
                pass
            self.sock = None
        self._pos = self._end = 0
        self._busy = None

    def _open(self):
        from iothub import transient

        self.sock = transient("iothub.net").open_stream(self.host, self.port, self._ctx, self._timeout, self._sock_factory)
        # MicroPython's blocking readinto() returns only once the whole buffer is full, and a
        # response is often shorter than the buffer: so the socket is non-blocking, and waiting
        # for data (or for room to write) goes through select.poll with the timeout.
        self.sock.setblocking(False)
        self._poller = None
        self.opened += 1
        self._pos = self._end = 0

    def _wait(self, event, deadline):
        """Wait until the socket is ready for ``event``; OSError(ETIMEDOUT) past ``deadline``."""
        from iothub.clock import ticks_diff, ticks_ms

        left = ticks_diff(deadline, ticks_ms())
        if left <= 0:
            raise OSError(_ETIMEDOUT)
        if self._poller is None:
            import select

            self._poller = select.poll()
            self._poller.register(self.sock, event)
        else:
            self._poller.modify(self.sock, event)
        self._poller.poll(left)

    def _deadline(self):
        from iothub.clock import ticks_add, ticks_ms

        return ticks_add(ticks_ms(), int(self._timeout * 1000))

    def _recv_into(self, mv):
        """Read what has arrived into ``mv`` (at least one byte; 0 at EOF), waiting up to the timeout."""
        deadline = None
        while True:
            n = self.sock.readinto(mv)
            if n is not None:
                return n
            if deadline is None:
                deadline = self._deadline()
            self._wait(_POLLIN, deadline)

    # ------------------------------------------------------------------ sending
    def head(self, method, path, headers=None, length=None):
        """The request line and headers as bytes (``Content-Length`` if ``length`` given)."""
        head = method + " " + path + " HTTP/1.1\r\nHost: " + self._host_header + "\r\n"
        if headers:
            for k, v in headers.items() if hasattr(headers, "items") else headers:
                head += k + ": " + v + "\r\n"
        if length is not None:
            head += "Content-Length: " + str(length) + "\r\n"
        return (head + "\r\n").encode()

    def request(self, method, path, headers=None, body=None, length=None):
        """Send the request line and headers, and ``body`` if given.

        For a streamed body pass ``length`` and no ``body``, then call ``send()`` until exactly
        ``length`` bytes went out. ``headers``: list of ``(name, value)`` pairs or a dict.
        A short body goes out in the same write as the head: two small writes in a row meet
        Nagle's algorithm and the peer's delayed ACK, which costs 40-200 ms per request.
        """
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            length = len(body)
        data = self.head(method, path, headers, length)
        if body and len(body) <= 1024:
            data += body
            body = None
        self.send_first(data)
        if body:
            self.send(body)

    def send_first(self, data, n=-1):
        """Start a request with ``data`` (head, perhaps with the body behind it), opening the
        connection if needed; a kept-alive connection the server closed meanwhile is
        replaced once. Drains the previous response if it was not read to its end."""
        if self._busy is not None:
            self._busy.drain()
        for attempt in (0, 1):
            reused = self.sock is not None
            if not reused:
                self._open()
            try:
                self.send(data, n)
                return
            except OSError:
                self.close()
                if not reused or attempt:
                    raise

    def send(self, data, n=-1):
        """Write ``n`` bytes of ``data`` (all of it by default) to the connection."""
        if n < 0:
            n = len(data)
        mv = memoryview(data)
        off = 0
        deadline = None
        while off < n:
            w = self.sock.write(mv[off:n])
            if w:
                off += w
                deadline = None
                continue
            if w == 0:
                raise OSError(104)
            if deadline is None:  # None: the socket buffer is full for now
                deadline = self._deadline()
            self._wait(_POLLOUT, deadline)

    # ------------------------------------------------------------------ receiving
    def _fill(self):
        # Refill the buffer (only when it is empty); returns bytes read, 0 at EOF.
        n = self._recv_into(self._mv)
        self._pos = 0
        self._end = n
        return n

    def _read_body(self, mv):
        if self._pos < self._end:
            n = min(len(mv), self._end - self._pos)
            mv[:n] = self._mv[self._pos : self._pos + n]
            self._pos += n
            return n
        # Large reads go straight into the caller's buffer.
        return self._recv_into(mv)

    def _readline(self):
        """One line without CRLF, as bytes. A line longer than 256 bytes is cut short (only
        headers this client ignores are ever that long)."""
        line = self._line
        cap = len(line)
        n = 0
        while True:
            if self._pos >= self._end and not self._fill():
                raise ProtocolError("connection closed inside the response head")
            b = self._buf[self._pos]
            self._pos += 1
            if b == 10:
                break
            if n < cap:
                line[n] = b
                n += 1
        if n and line[n - 1] == 13:
            n -= 1
        return bytes(line[:n])

    def _expect_crlf(self):
        if self._readline():
            raise ProtocolError("chunk not followed by CRLF")

    def _done(self, reusable):
        self._busy = None
        if not (reusable and self._reusable):
            self.close()

    def getresponse(self, method="GET"):
        """Read the status line and headers; return an ``HTTPResponse`` for the body."""
        try:
            return self._getresponse(method)
        except Exception:
            self.close()  # the connection's state is unknown: never reuse it
            raise

    def _getresponse(self, method):
        while True:
            line = self._readline()
            if not line.startswith(b"HTTP/1."):
                raise ProtocolError("bad status line")
            code = line[9:12]
            if len(code) != 3 or not code.isdigit() or line[8:9] != b" ":
                raise ProtocolError("bad status line")
            status = int(code)
            version11 = line.startswith(b"HTTP/1.1")
            headers = {}
            while True:
                h = self._readline()
                if not h:
                    break
                colon = h.find(b":")
                if colon <= 0:
                    raise ProtocolError("bad header line")
                name = h[:colon].strip().decode().lower()
                if name in _KEEP:
                    headers[name] = h[colon + 1 :].strip().decode()
            if 100 <= status < 200:
                continue  # 100 Continue and friends: the real answer follows
            break
        conn_hdr = headers.get("connection", "").lower()
        self._reusable = version11 and conn_hdr != "close" or conn_hdr == "keep-alive"
        te = headers.get("transfer-encoding", "").lower()
        if method == "HEAD" or status in (204, 304):
            mode, left = 0, 0
        elif te:
            if te != "chunked":
                raise ProtocolError("unsupported transfer-encoding")
            mode, left = 2, 0
        elif "content-length" in headers:
            cl = headers["content-length"]
            if not cl.isdigit():
                raise ProtocolError("bad content-length")
            left = int(cl)
            mode = 1 if left else 0
        else:
            mode, left = 3, 0
            self._reusable = False
        resp = HTTPResponse(self, status, headers, mode, left)
        if mode == 0:
            self._done(True)
        else:
            self._busy = resp
        return resp
