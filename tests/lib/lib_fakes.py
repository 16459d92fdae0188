"""Test doubles: a recording socket (Adafruit MiniMQTT's mocket.py style) and a fake clock.

FakeSocket follows MicroPython's stream semantics: ``readinto`` returns None when non-blocking
and nothing is available, 0 at EOF; each chunk given to ``feed`` is one network arrival, so a
read never crosses into the next chunk (this is how partial packets are staged).
"""

import json


class FakeSocket:
    def __init__(self, *chunks, max_write=None, keep=True):
        self.chunks = [bytes(c) for c in chunks]
        self.keep = keep  # False: count the bytes written, keep none (memory tests)
        self.nsent = 0
        self.sent = bytearray()
        self.writes = []
        self.blocking = True
        self.closed = False
        self.eof = False
        self.max_write = max_write
        self.timeout = None

    def feed(self, *chunks):
        self.chunks.extend(bytes(c) for c in chunks)

    def readinto(self, buf, n=-1):
        if self.closed:
            raise OSError(9)
        if not self.chunks:
            if self.eof:
                return 0
            if self.blocking:
                raise OSError(110)  # ETIMEDOUT: a blocking read with nothing scripted
            return None
        mv = memoryview(buf)
        if n < 0:
            n = len(mv)
        chunk = self.chunks[0]
        take = min(n, len(chunk))
        mv[:take] = chunk[:take]
        if take == len(chunk):
            self.chunks.pop(0)
        else:
            self.chunks[0] = chunk[take:]
        return take

    def read(self, n):
        buf = bytearray(n)
        got = self.readinto(buf)
        return None if got is None else bytes(buf[:got])

    def write(self, buf, n=-1):
        if self.closed:
            raise OSError(9)
        data = bytes(memoryview(buf)[: (len(buf) if n < 0 else n)])
        if self.max_write:
            data = data[: self.max_write]
        self.nsent += len(data)
        if self.keep:
            self.sent += data
            self.writes.append(data)
        return len(data)

    def setblocking(self, flag):
        self.blocking = flag

    def settimeout(self, t):
        self.timeout = t
        self.blocking = t != 0

    def close(self):
        self.closed = True

    def take_sent(self):
        out = bytes(self.sent)
        self.sent = bytearray()
        return out


class FakeClock:
    """Ticks and Unix time under test control; ``sleep_ms`` just advances time."""

    def __init__(self, unix=1700000000, ticks=0):
        self.unix_ms = unix * 1000
        self.ticks = ticks
        self.sleeps = []

    def ticks_ms(self):
        return self.ticks

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, d):
        return a + d

    def sleep_ms(self, ms):
        self.sleeps.append(ms)
        self.advance(ms)

    def advance(self, ms):
        self.ticks += ms
        self.unix_ms += ms

    def time(self):
        return self.unix_ms // 1000


class FakeConn:
    """One MQTT connection as umqtt.simple's interface shows it, scripted by FakeHub."""

    def __init__(self, hub, args):
        self.hub = hub
        self.args = args
        self.cb = None
        self.puback_cb = None
        self.pid = 0
        self.open = False
        self.inbox = []  # (topic, msg) to deliver on the next check_msg
        self.acks = []
        self.pings_unanswered = 0
        self.subs = []

    def set_callback(self, f):
        self.cb = f

    def set_puback_callback(self, f):
        self.puback_cb = f

    def connect(self, clean_session=True):
        self.hub.clock.advance(self.hub.connect_cost_ms)
        if self.hub.fail:
            raise self.hub.fail.pop(0)
        self.clean = clean_session
        self.open = True
        return 0

    def _check_open(self):
        if not self.open:
            raise OSError(104)

    def subscribe(self, topic, qos=0):
        self._check_open()
        self.subs.append((topic, qos))
        return qos

    def publish(self, topic, msg, retain=False, qos=0):
        self._check_open()
        if self.hub.break_on_publish:
            self.open = False
            raise OSError(104)
        topic = topic.decode() if isinstance(topic, bytes) else topic
        msg = msg.encode() if isinstance(msg, str) else bytes(msg)
        self.hub.published.append((topic, msg, qos))
        pid = None
        if qos:
            self.pid += 1
            pid = self.pid
            if self.hub.auto_ack:
                self.acks.append(pid)
        if topic.startswith("$iothub/twin/GET/") and self.hub.twin is not None:
            rid = topic.split("$rid=")[1]
            self.inbox.append(("$iothub/twin/res/200/?$rid=" + rid, json.dumps(self.hub.twin).encode()))
        if topic.startswith("$iothub/twin/PATCH/properties/reported/") and self.hub.answer_patches:
            rid = topic.split("$rid=")[1]
            self.hub.reported_version += 1
            self.inbox.append(("$iothub/twin/res/204/?$rid=%s&$version=%d" % (rid, self.hub.reported_version), b""))
        return pid

    def check_msg(self):
        self._check_open()
        if self.hub.drop:
            self.hub.drop = False
            self.open = False
            raise OSError(104)
        while self.inbox:
            topic, msg = self.inbox.pop(0)
            self.cb(topic.encode(), msg)
        while self.acks:
            self.puback_cb(self.acks.pop(0))
        if self.hub.answer_pings:
            self.pings_unanswered = 0

    def ping(self):
        self._check_open()
        self.hub.pings += 1
        self.pings_unanswered += 1

    def disconnect(self):
        self.hub.disconnects += 1
        self.open = False

    def close(self):
        self.open = False


class FakeHub:
    def __init__(self, clock):
        self.clock = clock
        self.conns = []
        self.fail = []  # exceptions the next connects raise, in order
        self.published = []
        self.auto_ack = True
        self.twin = None  # the document a twin GET answers with (None: no answer)
        self.answer_patches = True
        self.reported_version = 1
        self.answer_pings = True
        self.pings = 0
        self.drop = False
        self.break_on_publish = False
        self.disconnects = 0
        self.connect_cost_ms = 0

    def factory(self, client_id, server, port, user, password, keepalive, ssl):
        conn = FakeConn(self, dict(client_id=client_id, server=server, port=port, user=user, password=password, keepalive=keepalive))
        self.conns.append(conn)
        return conn

    @property
    def conn(self):
        return self.conns[-1]

    def deliver(self, topic, msg):
        self.conn.inbox.append((topic, msg if isinstance(msg, bytes) else msg.encode()))

    def published_on(self, prefix):
        return [(t, m) for t, m, q in self.published if t.startswith(prefix)]
