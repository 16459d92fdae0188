"""A small MQTT 3.1.1 client with the interface of micropython-lib's ``umqtt.simple``.

Same constructor and methods (``connect``, ``disconnect``, ``ping``, ``publish``, ``subscribe``,
``set_callback``, ``set_last_will``, ``wait_msg``, ``check_msg``), so the session layer can run on
either. What differs inside:

- QoS 1 ``publish`` does not block for its PUBACK: it returns the packet id and the PUBACK is
  matched later by id (``set_puback_callback``, ``inflight()``); ``umqtt.simple`` returns None
  after waiting, which the session treats as "already acknowledged".
- One preallocated receive buffer, read through a memoryview with ``readinto``; the reader is a
  small state machine that keeps partial packets across non-blocking reads.
- Every packet from the peer is checked (lengths, flags, types) and a violation raises
  ``MQTTProtocolError`` instead of an ``assert``.
- A PUBLISH larger than the buffer is read through and dropped (acknowledged if QoS 1, so the hub
  does not redeliver it forever) and counted in ``oversize_drops``; the callback given to
  ``set_oversize_callback`` hears of it.
- A callback that returns ``False`` leaves a QoS 1 PUBLISH unacknowledged (``umqtt.simple``
  ignores what it returns): the server sends it again on the next connection, as IoT Hub does
  for a cloud-to-device message. ``iothub.client`` does so when it had no heap to take one in.

Spec references are to MQTT 3.1.1 (OASIS, 2014) sections.
"""

from iothub.errors import ConfigError, ProtocolError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


# Control packet types, high nibble of the fixed header (2.2.1).
_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)  # 3.8.1: SUBSCRIBE's reserved flags are 0b0010
_SUBACK = const(0x90)
_UNSUBACK = const(0xB0)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)

_ECONNRESET = const(104)
_COALESCE = const(512)  # payloads up to this size are copied behind the PUBLISH header
_TX = const(256)  # transmit buffer: a sensor node's PUBLISH fits whole

# Reader states.
_HEADER = const(0)  # collecting the fixed header (type byte + remaining length)
_BODY = const(1)  # reading the variable header and payload into the buffer
_SKIP = const(2)  # discarding the tail of a PUBLISH bigger than the buffer


class MQTTException(Exception):
    """As in ``umqtt.simple``: ``args[0]`` (and ``.code``) is the CONNACK return code or the
    SUBACK failure code (0x80)."""

    def __init__(self, code, text=None):
        if text is None:
            super().__init__(code)
        else:
            super().__init__(code, text)
        self.code = code


class MQTTProtocolError(ProtocolError):
    """The peer sent a malformed or unexpected packet; the connection must be dropped."""


def _put_len(buf, i, n):
    # Remaining length, 1 to 4 bytes, 7 bits each, least significant first (2.2.3).
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            buf[i] = b | 0x80
            i += 1
        else:
            buf[i] = b
            return i + 1


def _put_str(buf, i, data):
    n = len(data)
    buf[i] = n >> 8
    buf[i + 1] = n & 0xFF
    buf[i + 2 : i + 2 + n] = data
    return i + 2 + n


def _b(s):
    return s.encode() if isinstance(s, str) else s


def connect_packet(client_id, user=None, password=None, keepalive=0, clean_session=True, will=None):
    """The CONNECT packet (3.1) as a bytearray. ``will`` is ``(topic, msg, retain, qos)``."""
    client_id = _b(client_id)
    user = _b(user)
    password = _b(password)
    if keepalive < 0 or keepalive > 65535:
        raise ConfigError("keepalive out of range")
    n = 10 + 2 + len(client_id)
    flags = 0x02 if clean_session else 0
    if will:
        wt, wm, wr, wq = _b(will[0]), _b(will[1]), will[2], will[3]
        n += 4 + len(wt) + len(wm)
        flags |= 0x04 | (wq & 3) << 3 | (0x20 if wr else 0)
    if user is not None:
        n += 2 + len(user)
        flags |= 0x80
    if password is not None:
        n += 2 + len(password)
        flags |= 0x40
    pkt = bytearray(n + 5)
    pkt[0] = _CONNECT
    i = _put_len(pkt, 1, n)
    pkt[i : i + 7] = b"\x00\x04MQTT\x04"  # protocol name and level 4 (3.1.2.1-2)
    pkt[i + 7] = flags
    pkt[i + 8] = keepalive >> 8
    pkt[i + 9] = keepalive & 0xFF
    i = _put_str(pkt, i + 10, client_id)
    if will:
        i = _put_str(pkt, i, wt)
        i = _put_str(pkt, i, wm)
    if user is not None:
        i = _put_str(pkt, i, user)
    if password is not None:
        i = _put_str(pkt, i, password)
    return memoryview(pkt)[:i]


class MQTTClient:
    """MQTT 3.1.1 client; see the module docstring for what differs from ``umqtt.simple``.

    Extra keyword arguments (all optional): ``bufsize`` (receive buffer, the largest packet
    handled whole), ``buf`` (a bytearray to use as that buffer, allocated earlier: see
    ``iothub.session.reserve``; ``bufsize`` is then its length), ``max_inflight`` (QoS 1 publishes awaiting PUBACK), ``sock_factory``
    (``f(host, port) -> stream``, replaces getaddrinfo/socket/connect: tests and proxies),
    ``timeout`` (seconds, for connect and blocking reads/writes). One client serves any number
    of connections (``connect()`` again after a drop), with the same buffers.
    """

    def __init__(
        self,
        client_id,
        server,
        port=0,
        user=None,
        password=None,
        keepalive=0,
        ssl=None,
        ssl_params={},
        bufsize=1024,
        max_inflight=4,
        sock_factory=None,
        timeout=30,
        buf=None,
    ):
        if buf is not None:
            bufsize = len(buf)
        if port == 0:
            port = 8883 if ssl else 1883
        if bufsize < 64:
            raise ConfigError("bufsize must be at least 64")
        self.client_id = client_id
        self.server = server
        self.port = port
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.ssl_params = ssl_params
        self.sock = None
        self._plain = None
        self.cb = None
        self.lw = None
        self.pid = 0
        self.oversize_drops = 0
        self.pings_unanswered = 0
        self._max_inflight = max_inflight
        self._sock_factory = sock_factory
        self._timeout = timeout
        self._puback_cb = None
        self._oversize_cb = None
        self._inflight = {}  # pid -> True while its PUBACK is awaited
        self._subacks = {}  # pid -> granted code, filled when a SUBACK arrives
        self._connack = None
        self._blocking = None
        self._lent = False
        # Buffers for the life of the client; the header has its own 5 bytes.
        self._buf = bytearray(bufsize) if buf is None else buf
        self._tx = bytearray(_TX)  # every packet that fits is built here: no garbage a message
        self._mv = memoryview(self._buf)
        self._hdr = bytearray(5)
        self._hmv = memoryview(self._hdr)
        self._reset_reader()

    # ----------------------------------------------------------------- configuration
    def set_callback(self, f):
        """``f(topic: bytes, msg: bytes)`` for each PUBLISH received (copies: keep them freely);
        ``False`` returned: a QoS 1 one is not acknowledged (the server sends it again later)."""
        self.cb = f

    def set_puback_callback(self, f):
        """``f(pid)`` when the PUBACK of a QoS 1 publish arrives."""
        self._puback_cb = f

    def set_oversize_callback(self, f):
        """``f(topic: bytes, size)`` when a PUBLISH bigger than the buffer was dropped."""
        self._oversize_cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.lw = (topic, msg, retain, qos)

    def inflight(self):
        """How many QoS 1 publishes await their PUBACK."""
        return len(self._inflight)

    # ----------------------------------------------------------------- connection
    def _open(self):
        """The stream to use; keeps the plain socket under it in ``self._plain`` for timeouts."""
        from iothub import transient

        net = transient("iothub.net")  # the sockets, TLS and DNS: only while connecting
        ctx = None
        if self.ssl and hasattr(self.ssl, "wrap_socket"):
            # An SSLContext (what umqtt.simple >= 1.4 takes): verification is its business.
            ctx = self.ssl
        sock, self._plain = net.open_pair(self.server, self.port, ctx, self._timeout, self._sock_factory)
        if self.ssl and ctx is None:
            # ssl=True, the older umqtt.simple convention: ssl.wrap_socket(sock, **ssl_params).
            sock = net.ssl_module().wrap_socket(sock, **self.ssl_params)
        return sock

    def connect(self, clean_session=True):
        """Open the connection, send CONNECT, wait for CONNACK (3.2).

        Returns the session-present flag. Raises ``MQTTException(code)`` if the server refuses,
        ``OSError`` on network failure, ``MQTTProtocolError`` on a malformed answer.
        """
        self.close()
        self.sock = self._open()
        self._blocking = None
        self._reset_reader()
        self._inflight = {}
        self._subacks = {}
        self.pings_unanswered = 0
        self._connack = None
        try:
            self._write(
                connect_packet(self.client_id, self.user, self.pswd, self.keepalive, clean_session, self.lw)
            )
            self._set_blocking(True)
            if self._next_packet(True) != _CONNACK:
                raise MQTTProtocolError("expected CONNACK")
        except BaseException:
            self.close()
            raise
        present, rc = self._connack
        if rc:
            self.close()
            raise MQTTException(rc)
        return present & 1

    def disconnect(self):
        """Send DISCONNECT (3.14) if possible, then close. Never raises."""
        if self.sock is not None:
            try:
                self._tx[0] = _DISCONNECT
                self._tx[1] = 0
                self._write(self._tx, 2)
            except Exception:
                pass
        self.close()

    def close(self):
        """Close the socket without a DISCONNECT packet (the peer will send the last will)."""
        if self.sock is not None:
            try:
                self.sock.close()
            except Exception:
                pass
            self.sock = None

    # ----------------------------------------------------------------- sending
    def _set_blocking(self, flag):
        # "Blocking" means blocking with the timeout: setblocking(True) would clear it (on
        # MicroPython as on CPython) and a silent peer would then hang wait_msg/subscribe.
        if self._blocking is not flag:
            self.sock.setblocking(flag)
            if flag:
                # After setblocking(True), which clears any timeout; a TLS socket has no
                # settimeout of its own (MicroPython 1.27), its plain socket carries it.
                self._plain.settimeout(self._timeout)
            self._blocking = flag

    def _write(self, buf, n=-1):
        if self.sock is None:
            raise OSError(_ECONNRESET)
        if n < 0:
            n = len(buf)
        self._set_blocking(True)  # writes block (bounded by the socket timeout)
        mv = memoryview(buf)
        off = 0
        while off < n:
            w = self.sock.write(mv[off:n])
            if not w:
                raise OSError(_ECONNRESET)
            off += w

    def _next_pid(self):
        # Packet ids are 1..65535 (2.3.1); skip ids still awaiting their PUBACK/SUBACK.
        while True:
            self.pid = (self.pid % 65535) + 1
            if self.pid not in self._inflight and self.pid not in self._subacks:
                return self.pid

    def ping(self):
        """Send PINGREQ (3.12). ``pings_unanswered`` counts those not yet answered."""
        self._tx[0] = _PINGREQ
        self._tx[1] = 0
        self._write(self._tx, 2)
        self.pings_unanswered += 1

    def publish(self, topic, msg, retain=False, qos=0):
        """Send a PUBLISH (3.3). QoS 1 returns the packet id at once (PUBACK matched later)."""
        if qos not in (0, 1):
            raise ConfigError("QoS 0 or 1 only (IoT Hub has no QoS 2)")
        if qos and len(self._inflight) >= self._max_inflight:
            raise ConfigError("too many QoS 1 publishes in flight")
        topic = _b(topic)
        msg = _b(msg)
        n = 2 + len(topic) + len(msg) + (2 if qos else 0)
        # A small message is copied behind its header and sent in one write (two small writes
        # in a row meet Nagle's algorithm and the broker's delayed ACK); a big one is not copied.
        small = len(msg) <= _COALESCE
        size = 9 + len(topic) + (len(msg) if small else 0)
        # In the transmit buffer when it fits (a sensor's telemetry, a method's answer).
        hdr = self._tx if size <= len(self._tx) else bytearray(size)
        hdr[0] = _PUBLISH | qos << 1 | (1 if retain else 0)
        i = _put_len(hdr, 1, n)
        i = _put_str(hdr, i, topic)
        pid = None
        if qos:
            pid = self._next_pid()
            hdr[i] = pid >> 8
            hdr[i + 1] = pid & 0xFF
            i += 2
        if small:
            hdr[i : i + len(msg)] = msg
            self._write(hdr, i + len(msg))
        else:
            self._write(hdr, i)
            self._write(msg)
        if pid:
            self._inflight[pid] = True
        return pid

    def subscribe(self, topic, qos=0):
        """Send SUBSCRIBE (3.8) and wait for its SUBACK, handling other packets meanwhile.

        Returns the granted QoS; raises ``MQTTException(0x80)`` if the server refused.
        """
        topic = _b(topic)
        n = 2 + 2 + len(topic) + 1
        pkt = self._tx if n + 5 <= len(self._tx) else bytearray(n + 5)
        pkt[0] = _SUBSCRIBE
        i = _put_len(pkt, 1, n)
        pid = self._next_pid()
        pkt[i] = pid >> 8
        pkt[i + 1] = pid & 0xFF
        i = _put_str(pkt, i + 2, topic)
        pkt[i] = qos
        self._subacks[pid] = None
        self._write(pkt, i + 1)
        try:
            while self._subacks[pid] is None:
                self._next_packet(True)
            code = self._subacks[pid]
        finally:
            self._subacks.pop(pid, None)
        if code == 0x80:
            raise MQTTException(0x80, "subscription refused")
        return code

    # ----------------------------------------------------------------- receiving
    def wait_msg(self):
        """Block until one packet has been handled; return its type (high nibble)."""
        return self._next_packet(True)

    def check_msg(self):
        """Handle every packet already available without blocking; return the type of the last
        one handled, or None if none was complete (nothing is read while the buffer is lent)."""
        last = None
        while self.sock is not None and not self._lent:
            t = self._next_packet(False)
            if t is None:
                break
            last = t
        return last

    def lend(self, on):
        """``lend(True)``: the receive buffer, for another job that runs between reads (a file
        upload), if no packet is half read into it, else None; reading stops until
        ``lend(False)``. Unread packets wait in the socket meanwhile."""
        if not on:
            self._lent = False
            return None
        if self._state != _HEADER or self._hn:
            return None
        self._lent = True
        return self._buf

    def _reset_reader(self):
        self._state = _HEADER
        self._hn = 0  # header bytes held
        self._rl = 0  # remaining length being decoded / decoded
        self._got = 0  # body bytes held (or discarded, in _SKIP)
        self._keep = 0  # bytes of an oversize PUBLISH kept at the buffer's start

    def _recv(self, mv):
        # Read into mv; 0 means "nothing now" (non-blocking), EOF raises.
        n = self.sock.readinto(mv)
        if n is None:
            return 0
        if n == 0:
            raise OSError(_ECONNRESET)
        return n

    def _next_packet(self, block):
        """Advance the reader; handle a complete packet and return its type, or None if the
        socket has no more bytes right now (non-blocking only)."""
        if self.sock is None:
            raise OSError(_ECONNRESET)
        self._set_blocking(block)
        blen = len(self._buf)
        while True:
            if self._state == _HEADER:
                if not self._recv(self._hmv[self._hn : self._hn + 1]):
                    return None
                self._hn += 1
                if self._hn == 1:
                    continue
                b = self._hdr[self._hn - 1]
                self._rl |= (b & 0x7F) << (7 * (self._hn - 2))
                if b & 0x80:
                    if self._hn == 5:
                        raise MQTTProtocolError("remaining length longer than 4 bytes")
                    continue
                if self._rl == 0:
                    return self._dispatch(0)
                self._state = _BODY
            elif self._state == _BODY:
                want = self._rl if self._rl < blen else blen
                n = self._recv(self._mv[self._got : want])
                if not n:
                    return None
                self._got += n
                if self._got < want:
                    continue
                if self._rl <= blen:
                    return self._dispatch(self._rl)
                self._start_skip()
            else:
                left = self._rl - self._got
                room = blen - self._keep
                n = self._recv(self._mv[self._keep : self._keep + (left if left < room else room)])
                if not n:
                    return None
                self._got += n
                if self._got == self._rl:
                    return self._dispatch_oversize()

    def _start_skip(self):
        # The buffer holds the first bytes of a packet too big for it. Only a PUBLISH may be
        # that big; keep its topic and packet id so it can be acknowledged and reported.
        t = self._hdr[0]
        if t & 0xF0 != _PUBLISH:
            raise MQTTProtocolError("oversize packet of type 0x%02x" % t)
        keep = 2 + (self._buf[0] << 8 | self._buf[1]) + (2 if t & 0x06 else 0)
        if keep > len(self._buf) - 16:
            raise MQTTProtocolError("topic longer than the receive buffer")
        self._keep = keep
        self._state = _SKIP

    def _dispatch_oversize(self):
        t = self._hdr[0]
        size = self._rl
        tl = self._buf[0] << 8 | self._buf[1]
        topic = bytes(self._mv[2 : 2 + tl])
        pid = self._buf[2 + tl] << 8 | self._buf[3 + tl] if t & 0x06 else 0
        self._reset_reader()
        self.oversize_drops += 1
        if pid:
            self._puback(pid)
        if self._oversize_cb:
            self._oversize_cb(topic, size)
        return _PUBLISH

    def _puback(self, pid):
        # In the transmit buffer too: a PUBLISH built there (a callback's answer) has been
        # written by the time the PUBACK of what it answered goes out.
        self._tx[0] = _PUBACK
        self._tx[1] = 2
        self._tx[2] = pid >> 8
        self._tx[3] = pid & 0xFF
        self._write(self._tx, 4)

    def _dispatch(self, rl):
        """Handle the complete packet: fixed header in _hdr, body in _buf[:rl]."""
        first = self._hdr[0]
        t = first & 0xF0
        flags = first & 0x0F
        buf = self._buf
        self._reset_reader()
        if self._connack is None and t != _CONNACK:
            raise MQTTProtocolError("first packet is not CONNACK (0x%02x)" % first)
        if t == _PUBLISH:
            qos = (flags >> 1) & 3
            if qos == 3:
                raise MQTTProtocolError("PUBLISH with QoS 3")
            if qos == 2:
                raise MQTTProtocolError("PUBLISH with QoS 2 (not used by IoT Hub)")
            if rl < 2:
                raise MQTTProtocolError("PUBLISH too short")
            tl = buf[0] << 8 | buf[1]
            end = 2 + tl
            if end + (2 if qos else 0) > rl:
                raise MQTTProtocolError("PUBLISH topic longer than the packet")
            pid = 0
            if qos:
                pid = buf[end] << 8 | buf[end + 1]
                if pid == 0:
                    raise MQTTProtocolError("PUBLISH with packet id 0")
                end += 2
            # Copies: the buffer is reused by the next read, the callback may keep these.
            topic = bytes(self._mv[2 : 2 + tl])
            msg = bytes(self._mv[end:rl])
            taken = self.cb(topic, msg) if self.cb else None
            if qos and taken is not False:
                self._puback(pid)
            return t
        if flags:
            raise MQTTProtocolError("reserved flags set in packet 0x%02x" % first)
        if t == _CONNACK:
            if rl != 2 or buf[0] > 1:
                raise MQTTProtocolError("malformed CONNACK")
            if self._connack is not None:
                raise MQTTProtocolError("second CONNACK")
            self._connack = (buf[0], buf[1])
        elif t == _PUBACK:
            if rl != 2:
                raise MQTTProtocolError("malformed PUBACK")
            pid = buf[0] << 8 | buf[1]
            # An unknown id is a duplicate or late PUBACK: harmless, ignored.
            if self._inflight.pop(pid, None) and self._puback_cb:
                self._puback_cb(pid)
        elif t == _SUBACK:
            if rl < 3:
                raise MQTTProtocolError("malformed SUBACK")
            pid = buf[0] << 8 | buf[1]
            code = buf[2]
            if code not in (0, 1, 2, 0x80):
                raise MQTTProtocolError("bad SUBACK return code")
            if pid in self._subacks:
                self._subacks[pid] = code
        elif t == _UNSUBACK:
            if rl != 2:
                raise MQTTProtocolError("malformed UNSUBACK")
        elif t == _PINGRESP:
            if rl:
                raise MQTTProtocolError("malformed PINGRESP")
            self.pings_unanswered = 0
        else:
            raise MQTTProtocolError("unexpected packet type 0x%02x from server" % first)
        return t
