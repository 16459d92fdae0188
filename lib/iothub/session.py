"""The IoT Hub MQTT session: connect, token renewal, keepalive, backoff, and the telemetry window
and queue. ``iothub.client.IoTHubClient`` is the thin layer on top (dispatch, twin, methods,
upload); an application writes against that.

Cooperative: the application calls ``poll()`` (or ``loop()``) often; callbacks run from inside
it. No threads. One session is one device (or module) identity and one MQTT connection.

Session rules (DESIGN section 3):

- CONNECT with client id ``{device}[/{module}]``, username ``{HostName}/{device}[/{module}]/
  ?api-version=2021-04-12``, password a SAS token valid ``token_ttl`` seconds; then subscribe
  (C2D, methods, twin responses, desired patches) and hand over to the layer above
  (``_on_up``: twin resync, reported patches held offline), then re-send unacknowledged
  telemetry and drain the queue.
- The token is renewed ``renew_margin`` seconds before it expires by reconnecting (MQTT 3.1.1
  has no re-authentication). RENEWING lets telemetry in flight through first (nothing new is
  published until its PUBACKs arrive, for at most half the margin), so a renewal causes no
  duplicates.
- Keepalive: PINGREQ every ``keepalive / 2`` seconds; two pings unanswered means the link is
  dead (the hub would drop us after 1.5 x keepalive anyway).
- A lost connection is retried after ``retry.delay_ms(attempt, jitter)``, minus the time the
  failed attempt took. Network errors, protocol errors and CONNACK 3 are retried; CONNACK 4/5
  (bad or expired token) are not: ``poll()``/``connect()`` raise ``AuthError`` and the session
  stays down (FAILED) until the application calls ``connect()`` again (after fixing the clock).
- Telemetry is QoS 1. While offline, renewing, or with ``max_inflight`` publishes
  unacknowledged, it waits in a ring of ``queue_len`` messages that drops the oldest and counts
  drops (``stats()``).

Nothing here logs or raises with the key, the token or the connection string in the text.
"""

import json

from iothub import transient
from iothub.errors import AuthError, ConfigError, ProtocolError
from iothub.ring import Ring

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


API_VERSION = "2021-04-12"
MAX_MESSAGE = const(262144)  # IoT Hub's D2C limit (256 KB)

# States (``session.state``).
IDLE = const(0)  # never connected, or disconnect() called
CONNECTED = const(1)
WAITING = const(2)  # connection lost or failed: a retry is scheduled at _retry_at
FAILED = const(3)  # credentials refused (or a local fault): waits for connect()
RENEWING = const(4)  # connected, token renewal due: in-flight telemetry is let through first

# Events.
_UP = const(0)  # an attempt connected and subscribed
_FAIL = const(1)  # an attempt failed: retried after a backoff
_STOP = const(2)  # refused credentials or a local fault: not retried
_LOST = const(3)  # the link broke (or two pings went unanswered)
_RENEW = const(4)  # the token's renewal margin was reached
_CLOSE = const(5)  # the application called disconnect()

_NO = const(255)  # not a transition: the event is ignored (logged) and the state kept
_EVENTS = const(6)
# The transitions: a row per state, a column per event. connect() is allowed from every state
# (it drops a live link first); _LOST and _RENEW only happen while a link is up.
# fmt: off
TRANSITIONS = bytes((
    # _UP      _FAIL    _STOP   _LOST    _RENEW    _CLOSE
    CONNECTED, WAITING, FAILED, _NO,     _NO,      IDLE,  # IDLE
    CONNECTED, WAITING, FAILED, WAITING, RENEWING, IDLE,  # CONNECTED
    CONNECTED, WAITING, FAILED, _NO,     _NO,      IDLE,  # WAITING
    CONNECTED, WAITING, FAILED, _NO,     _NO,      IDLE,  # FAILED
    CONNECTED, WAITING, FAILED, WAITING, _NO,      IDLE,  # RENEWING
))
# fmt: on

# log levels
ERROR = const(1)
WARNING = const(2)
INFO = const(3)
DEBUG = const(4)

# Local faults a reconnect cannot fix: raised to the application (the session stops, FAILED).
# Everything else met while connecting (network, TLS, a broken answer, MemoryError) is retried.
_NOT_RETRIED = (ConfigError, TypeError, AttributeError, NameError, ImportError)


def _connack_code(exc):
    # umqtt.simple and our MQTTClient both raise MQTTException(code) on a refused CONNACK.
    args = getattr(exc, "args", ())
    if type(exc).__name__ == "MQTTException" and args and isinstance(args[0], int):
        return args[0]
    return None


def _urandom_jitter(limit):
    if limit <= 0:
        return 0
    try:
        import os

        r = os.urandom(4)
        return (r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3]) % (limit + 1)
    except Exception:
        return limit // 2


def reserve(bufsize=2048, tls=True):
    """The session's largest blocks, taken now: call it first thing at boot and pass the result
    as ``IoTHubClient(reserved=...)``, when start-up does much before it builds the client.
    MicroPython's GC does not compact: once start-up has parsed its config and imported its
    modules, the heap may be free in pieces only (an ESP8266 app found 14 KB free in no piece
    over 752 B), and the 2 KB MQTT receive buffer or the 3 KB TLS context no longer fits.
    Returns ``(receive buffer, empty TLS context or None)``."""
    ctx = None
    if tls:
        ssl = transient("iothub.net").ssl_module()
        if hasattr(ssl, "SSLContext"):  # else tls_context says what this port lacks, later
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return bytearray(bufsize), ctx


def default_transport(
    client_id, server, port, user, password, keepalive, ssl, bufsize=2048, max_inflight=4, sock_factory=None, timeout=30,
    buf=None,
):
    """Build this library's MQTTClient (imported here so a user-supplied transport never loads it)."""
    from iothub.mqtt import MQTTClient

    return MQTTClient(
        client_id,
        server,
        port,
        user,
        password,
        keepalive,
        ssl,
        bufsize=bufsize,
        max_inflight=max_inflight,
        sock_factory=sock_factory,
        timeout=timeout,
        buf=buf,
    )


class Session:
    """The connection and telemetry half of ``IoTHubClient`` (whose docstring lists the
    parameters). The layer above defines ``_on_message(topic, msg)`` (inbound dispatch),
    ``_on_up()`` (after every connect, before the queue drains) and ``_on_down()`` (the link
    is gone: what was waiting on it); no defaults, as each would cost a function object."""

    def __init__(self, cs, ca, port, keepalive, token_ttl, renew_margin, queue_len, max_inflight, bufsize,
                 backoff, model_id, transport, clock, jitter, log, log_level, sock_factory, timeout, reserved):
        if ca is None and transport is None:
            raise ConfigError("ca is required: the server certificate must be verified")
        if renew_margin >= token_ttl:
            raise ConfigError("renew_margin must be shorter than token_ttl")
        if not 0 < keepalive <= 1177:
            raise ConfigError("keepalive must be 1..1177 s (IoT Hub's maximum)")
        net = transient("iothub.net")  # what builds the TLS context and opens sockets: not kept

        # What the session needs of the connection string, so its parser is not kept: the
        # token's (hub host, key, key name) and the HTTPS host. Tuples rather than attributes:
        # each attribute grows the instance's table, a block that must be found whole.
        https_host = cs.connect_host()
        self._cred = (cs.host, cs.key_bytes(), cs.key_name, https_host)
        # As in azure-iot-device: a port in GatewayHostName/HostName is the HTTPS port (file
        # upload); MQTT goes to the same host on `port` (8883 unless told otherwise).
        server = net.split_host_port(https_host, 443)[0]
        # Built now, for the life of the session, like the MQTT client below: mbedTLS takes a
        # 3 KB block for it, which a fragmented heap may no longer have at a later connect
        # (or taken at boot: reserve()).
        buf, ctx = reserved or (None, None)
        self._ssl = None
        if ca is not None:
            self._ssl = net.tls_context(ca, ctx)
        self.device_id = cs.device_id
        self.module_id = cs.module_id
        client_id = cs.device_id + "/" + cs.module_id if cs.module_id else cs.device_id
        user = cs.host + "/" + client_id + "/?api-version=" + API_VERSION
        if model_id:
            user += "&model-id=" + transient("iothub.topics").quote(model_id)
        self._dial = (client_id, server, port, user)  # the transport's first arguments
        self._keepalive = keepalive
        self._ttl = token_ttl
        self._margin = renew_margin
        self._max_inflight = max_inflight
        # (min, max, jitter) ms; None: iothub.retry's defaults, read when a delay is due, so
        # that the module is not loaded at all while connections succeed.
        self._backoff = backoff
        if transport is None:
            # One MQTTClient for every connection of the session, built now while the heap is
            # young, with its receive and transmit buffers: each connection only gets a new
            # token. MicroPython's GC does not compact, and a new client a connection (a
            # 2 KB buffer and its attribute table, each needing a contiguous block) made
            # an ESP8266 app's first connect fail with 14 KB free in pieces, and would make a
            # reconnect fail hours later.
            mqtt = default_transport(
                client_id, server, port, user, None, keepalive, None, bufsize, max_inflight,
                sock_factory, timeout, buf,
            )

            def transport(cid, server, port, user, password, keepalive, ssl):
                mqtt.pswd = password
                mqtt.ssl = ssl
                return mqtt

        self._transport = transport
        if clock is None:
            from iothub.clock import SystemClock

            clock = SystemClock()
        self._clock = clock
        self._jitter = jitter or _urandom_jitter
        self._log_fn = log
        self._log_level = log_level if log else 0

        self.state = IDLE
        self._conn_cb = None
        self._mqtt = None
        self._expiry = 0  # Unix time the current token expires
        self._attempt = 0
        self._retry_at = 0
        self._last_ping = 0
        self._queue = Ring(queue_len)
        self._sent = {}  # pid -> (topic, body) until PUBACK
        self._topic = None  # (properties, topic) of the last telemetry sent
        self.connects = 0
        self.last_error = None

    # ------------------------------------------------------------------ helpers
    def on_connection(self, cb):
        """``cb(connected: bool, reason: str)`` whenever the session goes up or down."""
        self._conn_cb = cb

    def _log(self, level, text):
        if level <= self._log_level:
            self._log_fn(level, text)

    def stats(self):
        """Counters an application may report (e.g. in the twin)."""
        return {
            "queued": len(self._queue),
            "dropped": self._queue.drops,
            "inflight": len(self._sent),
            "connects": self.connects,
            "oversize": getattr(self._mqtt, "oversize_drops", 0),
        }

    def token_expiry(self):
        """Unix time the current connection's SAS token expires (0 if never connected)."""
        return self._expiry

    def is_connected(self):
        return self.state == CONNECTED or self.state == RENEWING

    def _move(self, event, reason):
        # The one place the state changes: TRANSITIONS says to what.
        state = TRANSITIONS[self.state * _EVENTS + event]
        if state == _NO:
            self._log(ERROR, "session event %d ignored in state %d" % (event, self.state))
            return
        was = self.is_connected()
        self.state = state
        if self.is_connected() != was and self._conn_cb:
            try:
                self._conn_cb(not was, reason)
            except Exception as e:  # an application bug must not kill the session
                self._log(ERROR, "connection callback failed: %r" % (e,))

    # ------------------------------------------------------------------ connection
    def connect(self):
        """Connect now (blocking). Raises ``AuthError`` if the hub refuses the token, the network
        error otherwise; after a network error ``poll()`` keeps retrying with backoff."""
        if self._mqtt is not None:
            self._drop_transport(False)
        self._attempt = 0
        self._try_connect(True)

    def disconnect(self):
        """Close the session; queued telemetry stays queued for a later ``connect()``."""
        self._drop_transport(False)
        self._move(_CLOSE, "disconnect")

    def _drop_transport(self, lost):
        m = self._mqtt
        self._mqtt = None
        if m is not None:
            try:
                if lost:
                    close = getattr(m, "close", None)
                    if close:
                        close()
                    else:
                        m.disconnect()
                else:
                    m.disconnect()
            except Exception:
                pass
        # Unacknowledged telemetry goes back to the queue's head, oldest first.
        pids = sorted(self._sent)
        for pid in reversed(pids):
            self._queue.push_front(self._sent[pid])
        self._sent = {}
        self._on_down()

    def _make_token(self, expiry):
        sas = transient("iothub.sas")
        host, key, key_name, _ = self._cred
        return sas.token(sas.resource_uri(host, self.device_id, self.module_id), key, expiry, key_name)

    def _delay_ms(self, elapsed=0):
        retry = transient("iothub.retry")
        low, high, jitter = self._backoff
        return retry.delay_ms(
            self._attempt,
            self._jitter(retry.JITTER_MS if jitter is None else jitter),
            retry.MIN_MS if low is None else low,
            retry.MAX_MS if high is None else high,
            elapsed,
        )

    def _token(self):
        # The connection's token: its expiry drives renewal.
        self._expiry = self._clock.time() + self._ttl
        return self._make_token(self._expiry)

    def _try_connect(self, raise_errors):
        clock = self._clock
        start = clock.ticks_ms()
        m = None
        connecting = True  # CONNACK codes only mean something while connecting
        try:
            dial = self._dial
            m = self._transport(dial[0], dial[1], dial[2], dial[3], self._token(), self._keepalive, self._ssl)
            m.set_callback(self._on_message)
            if hasattr(m, "set_puback_callback"):
                m.set_puback_callback(self._on_puback)
            if hasattr(m, "set_oversize_callback"):
                m.set_oversize_callback(self._on_oversize)
            self._mqtt = m
            m.connect(False)
            connecting = False
            # topics.c2d_sub, METHODS_SUB, TWIN_RES_SUB, TWIN_DESIRED_SUB, spelt out: a connect,
            # where the heap is tightest, then loads no module for them.
            if not self.module_id:
                m.subscribe("devices/" + self.device_id + "/messages/devicebound/#", 1)
            m.subscribe("$iothub/methods/POST/#", 0)
            m.subscribe("$iothub/twin/res/#", 0)
            m.subscribe("$iothub/twin/PATCH/properties/desired/#", 0)
        except Exception as e:
            self._mqtt = None
            if m is not None:
                try:
                    m.disconnect()
                except Exception:
                    pass
            code = _connack_code(e)
            if code is not None and not connecting:
                # A SUBACK refusal (0x80): not about credentials; retried like a network error.
                self._log(ERROR, "hub refused a subscription (code %d)" % code)
                code = None
                e = ProtocolError("subscription refused")
            self.last_error = e
            if code is not None and not transient("iothub.retry").connack_retryable(code):
                self._move(_STOP, "refused")
                self._log(ERROR, "hub refused the connection, CONNACK %d" % code)
                raise AuthError(code)
            if code is None and isinstance(e, _NOT_RETRIED):
                self._move(_STOP, "error")
                raise  # a bug or local misuse: not something a retry fixes
            wait = self._delay_ms(clock.ticks_diff(clock.ticks_ms(), start))
            self._attempt += 1
            self._retry_at = clock.ticks_add(clock.ticks_ms(), wait)
            self._move(_FAIL, "connect failed")
            self._log(WARNING, "connect failed (%r), retry in %d ms" % (e, wait))
            if raise_errors:
                raise e
            return False
        self._attempt = 0
        self.connects += 1
        self._last_ping = clock.ticks_ms()
        self._move(_UP, "connected")
        self._log(INFO, "connected")
        try:
            self._on_up()
            self._flush()
        except (OSError, ProtocolError) as e:
            self._lost(e)
        return True

    def _lost(self, exc):
        self.last_error = exc
        self._log(WARNING, "connection lost: %r" % (exc,))
        self._drop_transport(True)
        wait = self._delay_ms()
        self._attempt += 1
        self._retry_at = self._clock.ticks_add(self._clock.ticks_ms(), wait)
        self._move(_LOST, "connection lost")

    # ------------------------------------------------------------------ the loop
    def poll(self):
        """Do what is due now: read messages, keepalive, token renewal, reconnect, timeouts.

        Never blocks for long (reads are non-blocking; a reconnect blocks for one attempt).
        Raises ``AuthError`` only when a reconnect is refused for bad credentials.
        """
        clock = self._clock
        now = clock.ticks_ms()
        if self.is_connected():
            try:
                self._mqtt.check_msg()
            except Exception as e:
                # Callbacks are guarded in _on_message, so whatever escapes is the transport's
                # (umqtt.simple even raises AssertionError on a bad packet): reconnect.
                self._lost(e)
            else:
                # A callback may have called disconnect(): what the link was due is then void.
                if self.is_connected():
                    try:
                        self._maintain(now)
                    except (OSError, ProtocolError) as e:
                        self._lost(e)
        elif self.state == WAITING and clock.ticks_diff(now, self._retry_at) >= 0:
            self._try_connect(False)

    def loop(self, duration_ms=None, interval_ms=50):
        """Call ``poll()`` every ``interval_ms`` for ``duration_ms`` (forever if None)."""
        clock = self._clock
        start = clock.ticks_ms()
        while duration_ms is None or clock.ticks_diff(clock.ticks_ms(), start) < duration_ms:
            self.poll()
            clock.sleep_ms(interval_ms)

    def _maintain(self, now):
        clock = self._clock
        left = self._expiry - clock.time()
        if left <= self._margin:
            if self.state == CONNECTED:
                self._move(_RENEW, "renewal due")
            # Publish nothing new and let the PUBACKs of what is in flight come in first, so a
            # renewal does not turn into duplicates; wait at most half the margin.
            if self._sent and left > self._margin // 2:
                return
            self._log(INFO, "renewing the SAS token")
            self._drop_transport(False)
            self._attempt = 0
            self._try_connect(False)
            return
        if clock.ticks_diff(now, self._last_ping) >= self._keepalive * 500:
            if getattr(self._mqtt, "pings_unanswered", 0) >= 2:
                raise OSError(110)  # ETIMEDOUT: the broker stopped answering
            self._mqtt.ping()
            self._last_ping = now
        self._flush()

    # ------------------------------------------------------------------ telemetry
    def send_telemetry(self, body, properties=None):
        """Send a device-to-cloud message at QoS 1.

        ``body``: bytes or str (anything else is sent as JSON). ``properties``: dict or list of
        pairs; application properties plus system ones by wire name (``$.mid``, ``$.cid``,
        ``$.ct``, ``$.ce``). Returns True if published now, False if queued (offline, renewing or
        window full); the queue drops its oldest message when full.
        """
        if not isinstance(body, (bytes, bytearray, str)):
            body = json.dumps(body)
        cached = self._topic
        if cached is not None and cached[0] is properties:
            topic = cached[1]
        else:
            topic = transient("iothub.topics").telemetry_topic(self.device_id, properties, self.module_id)
            if properties is None or (
                isinstance(properties, tuple) and not [p for p in properties if not isinstance(p, tuple)]
            ):
                # The same immutable properties (a tuple of pairs) message after message, as a
                # sensor node sends them: the topic is built once, not once a message.
                self._topic = (properties, topic)
        if len(body) + len(topic) > MAX_MESSAGE:
            raise ConfigError("telemetry message larger than 256 KB")
        if self.can_send_now():
            try:
                self._publish_telemetry((topic, body))
                return True
            except (OSError, ProtocolError) as e:
                self._lost(e)  # it was put back at the head of the queue, no need to push it
                return False
        self._queue.push((topic, body))
        return False

    def can_send_now(self):
        """True if ``send_telemetry`` would publish at once rather than queue: connected, no
        renewal under way, nothing queued ahead, and room in the window of unacknowledged
        messages. An application with storage of its own (a ring on flash) keeps a message
        there until this says yes."""
        return self.state == CONNECTED and not len(self._queue) and len(self._sent) < self._max_inflight

    def _publish_telemetry(self, item):
        try:
            pid = self._mqtt.publish(item[0], item[1], False, 1)
        except (OSError, ProtocolError):
            self._queue.push_front(item)
            raise
        if pid:  # None: the transport waited for the PUBACK itself (umqtt.simple)
            self._sent[pid] = item

    def _flush(self):
        while self.state == CONNECTED and len(self._queue) and len(self._sent) < self._max_inflight:
            self._publish_telemetry(self._queue.pop())

    def _on_puback(self, pid):
        self._sent.pop(pid, None)

    def _on_oversize(self, topic, size):
        self._log(ERROR, "a %d-byte message did not fit the receive buffer and was dropped" % size)
