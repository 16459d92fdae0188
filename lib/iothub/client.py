"""The IoT Hub device session and the API an application writes against.

Cooperative: the application calls ``poll()`` (or ``loop()``) often; callbacks run from inside
it. No threads. One ``IoTHubClient`` is one device (or module) identity and one MQTT connection.

Session rules (DESIGN section 3):

- CONNECT with client id ``{device}[/{module}]``, username ``{HostName}/{device}[/{module}]/
  ?api-version=2021-04-12``, password a SAS token valid ``token_ttl`` seconds.
- After every connect: subscribe (C2D, methods, twin responses, desired patches), GET the twin
  if a desired-properties callback is set (applied only if its ``$version`` is newer), send the
  reported properties patched while offline, re-send unacknowledged telemetry, drain the queue.
- The token is renewed ``renew_margin`` seconds before it expires by reconnecting (MQTT 3.1.1
  has no re-authentication). Telemetry in flight is let through first (nothing new is published
  until its PUBACKs arrive, for at most half the margin), so a renewal causes no duplicates.
- Keepalive: PINGREQ every ``keepalive / 2`` seconds; two pings unanswered means the link is
  dead (the hub would drop us after 1.5 x keepalive anyway).
- A lost connection is retried after ``retry.delay_ms(attempt, jitter)``, minus the time the
  failed attempt took. Network errors, protocol errors and CONNACK 3 are retried; CONNACK 4/5
  (bad or expired token) are not: ``poll()``/``connect()`` raise ``AuthError`` and the session
  stays down until the application calls ``connect()`` again (after fixing the clock, say).
- Telemetry is QoS 1. While offline (or with ``max_inflight`` publishes unacknowledged) it waits
  in a ring of ``queue_len`` messages that drops the oldest and counts drops (``stats()``).

Nothing here logs or raises with the key, the token or the connection string in the text.
"""

import json

from iothub import topics, transient
from iothub.errors import AuthError, ConfigError, IoTHubError, NotConnected, ProtocolError, TimeoutError_
from iothub.pending import Pending
from iothub.ring import Ring
from iothub.twin import TwinState, combine_patches, too_deep

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


API_VERSION = "2021-04-12"
MAX_MESSAGE = const(262144)  # IoT Hub's D2C limit (256 KB)

# Session states.
IDLE = const(0)  # never connected, or disconnect() called
CONNECTED = const(1)
WAITING = const(2)  # connection lost or failed: a retry is scheduled at _retry_at
FAILED = const(3)  # credentials refused: waits for the application to call connect()

_GET = const(1)
_PATCH = const(2)

# log levels
ERROR = const(1)
WARNING = const(2)
INFO = const(3)
DEBUG = const(4)


# Local faults a reconnect cannot fix: raised to the application (the session stops, FAILED).
# Everything else met while connecting (network, TLS, a broken answer, MemoryError) is retried.
_NOT_RETRIED = (ConfigError, TypeError, AttributeError, NameError, ImportError)


def _all_of(callbacks):
    # One callback for a merged reported patch: each patch merged into it hears the answer.
    def call(status, version):
        for cb in callbacks:
            cb(status, version)

    return call


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


def default_transport(
    client_id, server, port, user, password, keepalive, ssl, bufsize=2048, max_inflight=4, sock_factory=None, timeout=30
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
    )


class IoTHubClient:
    """A device (or module) session. Construct, register callbacks, ``connect()``, ``loop()``.

    :param connection_string: ``HostName=...;DeviceId=...;SharedAccessKey=...`` (or a parsed
        ``connstr.ConnectionString``).
    :param ca: CA certificate(s) the server is verified against: DER, one or more back to back
        (``iothub.net.tls_context``). Required unless a ``transport`` is given. Parsed into the
        session's one TLS context when the client is built (a bad CA raises ``ConfigError``
        here), which MQTT and ``upload_file`` then share: the bytes are not kept.
    :param port: the MQTT port (TLS). MQTT goes to GatewayHostName (else HostName) without any
        ``:port`` it carries: that port is the HTTPS one, used by ``upload_file`` (as in the
        official SDK).
    :param transport: ``f(client_id, server, port, user, password, keepalive, ssl)`` returning an
        object with umqtt.simple's interface; defaults to ``iothub.mqtt.MQTTClient``.
    :param clock: object with ``ticks_ms``, ``ticks_diff``, ``ticks_add``, ``sleep_ms`` and
        ``time`` (Unix seconds); defaults to ``iothub.clock.SystemClock()``.
    :param jitter: ``f(max_ms) -> int`` in ``[0, max_ms]``; defaults to ``os.urandom``.
    :param log: ``f(level, text)``; messages above ``log_level`` are not even formatted.
    """

    def __init__(
        self,
        connection_string,
        ca=None,
        port=8883,
        keepalive=240,
        token_ttl=3600,
        renew_margin=300,
        queue_len=16,
        max_inflight=4,
        bufsize=2048,
        request_timeout_ms=10000,
        min_backoff_ms=None,
        max_backoff_ms=None,
        jitter_ms=None,
        model_id=None,
        transport=None,
        clock=None,
        jitter=None,
        log=None,
        log_level=WARNING,
        sock_factory=None,
        timeout=30,
    ):
        if isinstance(connection_string, str):
            connection_string = transient("iothub.connstr").parse(connection_string)
        cs = connection_string
        if ca is None and transport is None:
            raise ConfigError("ca is required: the server certificate must be verified")
        if renew_margin >= token_ttl:
            raise ConfigError("renew_margin must be shorter than token_ttl")
        if not 0 < keepalive <= 1177:
            raise ConfigError("keepalive must be 1..1177 s (IoT Hub's maximum)")
        from iothub.net import split_host_port

        # What the session needs of the connection string, so its parser is not kept.
        self._host = cs.host
        self._https_host = cs.connect_host()
        self._key = cs.key_bytes()
        self._key_name = cs.key_name
        # As in azure-iot-device: a port in GatewayHostName/HostName is the HTTPS port (file
        # upload); MQTT goes to the same host on `port` (8883 unless told otherwise).
        self._server = split_host_port(self._https_host, 443)[0]
        self._port = port
        # Built now, early in a young heap, like the MQTT client below: mbedTLS takes a 3 KB
        # block for it, which a fragmented heap may no longer have at the first connect.
        self._ssl = None
        if ca is not None:
            from iothub.net import tls_context

            self._ssl = tls_context(ca)
        self.device_id = cs.device_id
        self.module_id = cs.module_id
        if cs.module_id:
            self._client_id = cs.device_id + "/" + cs.module_id
        else:
            self._client_id = cs.device_id
        user = cs.host + "/" + self._client_id + "/?api-version=" + API_VERSION
        if model_id:
            user += "&model-id=" + topics.quote(model_id)
        self._user = user
        self._keepalive = keepalive
        self._ttl = token_ttl
        self._margin = renew_margin
        self._max_inflight = max_inflight
        self._req_timeout = request_timeout_ms
        # None: iothub.retry's defaults, read when a delay is due, so that the module is not
        # loaded at all while connections succeed (from files it would then stay loaded).
        self._backoff = (min_backoff_ms, max_backoff_ms, jitter_ms)
        if transport is None:
            # One MQTTClient for every connection of the session, built now while the heap is
            # young, with its receive and transmit buffers: each connection only gets a new
            # token. MicroPython's GC does not compact, and a new client a connection (a
            # 2 KB buffer and its attribute table, each needing a contiguous block) made
            # an ESP8266 app's first connect fail with 14 KB free in pieces, and would make a
            # reconnect fail hours later.
            mqtt = default_transport(
                self._client_id, self._server, port, user, None, keepalive, None, bufsize, max_inflight,
                sock_factory, timeout,
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
        self._mqtt = None
        self._expiry = 0  # Unix time the current token expires
        self._attempt = 0
        self._retry_at = 0
        self._draining = False  # renewal due: waiting for PUBACKs before reconnecting
        self._last_ping = 0
        self._queue = Ring(queue_len)
        self._sent = {}  # pid -> (topic, body) until PUBACK
        self._topic = None  # (properties, topic) of the last telemetry sent
        self._pending = Pending(8, clock.ticks_diff)
        self._twin = TwinState()
        self._reported = None  # merged reported patches waiting for a connection
        self._reported_cbs = []  # their callbacks
        self._c2d_cb = None
        self._desired_cb = None
        self._conn_cb = None
        self._methods = {}
        self.connects = 0
        self.last_error = None

    # ------------------------------------------------------------------ registration
    def on_c2d(self, cb):
        """``cb(body: bytes, properties: dict)`` for each cloud-to-device message."""
        self._c2d_cb = cb

    def on_method(self, name, cb):
        """``cb(payload) -> (status, payload)`` answers direct method ``name``. ``payload`` is
        the parsed JSON (None if empty). A raised exception is answered 500 with its text."""
        self._methods[name] = cb

    def on_desired(self, cb):
        """``cb(desired: dict, version: int, full: bool)``: ``full`` is True for the whole desired
        document after a (re)connect, False for a patch (``None`` values delete)."""
        self._desired_cb = cb

    def on_connection(self, cb):
        """``cb(connected: bool, reason: str)`` on every session state change."""
        self._conn_cb = cb

    # ------------------------------------------------------------------ helpers
    def _log(self, level, text):
        if level <= self._log_level:
            self._log_fn(level, text)

    def _now(self):
        return self._clock.ticks_ms()

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
        return self.state == CONNECTED

    def _set_state(self, state, reason):
        was = self.state == CONNECTED
        self.state = state
        if (state == CONNECTED) != was and self._conn_cb:
            try:
                self._conn_cb(state == CONNECTED, reason)
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
        self._set_state(IDLE, "disconnect")

    def _drop_transport(self, lost):
        m = self._mqtt
        self._mqtt = None
        self._draining = False
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
        # Reported patches the hub did not answer go out again after the next connect (an
        # acknowledgement of a desired patch must not be lost with the link); older first, the
        # ones patched while offline on top.
        held, held_cbs = self._reported, self._reported_cbs
        self._reported, self._reported_cbs = None, []
        for rid, kind, cb, body in self._pending.clear():
            if kind == _PATCH and body is not None:
                self._hold_reported(json.loads(body), cb)
            else:
                self._finish(kind, cb, 0, None, None)
        if held is not None:
            self._hold_reported(held, None)
            self._reported_cbs.extend(held_cbs)

    def _make_token(self, expiry):
        sas = transient("iothub.sas")
        return sas.token(sas.resource_uri(self._host, self.device_id, self.module_id), self._key, expiry,
                         self._key_name)

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
            m = self._transport(
                self._client_id, self._server, self._port, self._user, self._token(), self._keepalive, self._ssl
            )
            m.set_callback(self._on_message)
            if hasattr(m, "set_puback_callback"):
                m.set_puback_callback(self._on_puback)
            if hasattr(m, "set_oversize_callback"):
                m.set_oversize_callback(self._on_oversize)
            self._mqtt = m
            m.connect(False)
            connecting = False
            if not self.module_id:
                m.subscribe(topics.c2d_sub(self.device_id), 1)
            m.subscribe(topics.METHODS_SUB, 0)
            m.subscribe(topics.TWIN_RES_SUB, 0)
            m.subscribe(topics.TWIN_DESIRED_SUB, 0)
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
                self._set_state(FAILED, "refused")
                self._log(ERROR, "hub refused the connection, CONNACK %d" % code)
                raise AuthError(code)
            if code is None and isinstance(e, _NOT_RETRIED):
                self._set_state(FAILED, "error")
                raise  # a bug or local misuse: not something a retry fixes
            wait = self._delay_ms(clock.ticks_diff(clock.ticks_ms(), start))
            self._attempt += 1
            self._retry_at = clock.ticks_add(clock.ticks_ms(), wait)
            self._set_state(WAITING, "connect failed")
            self._log(WARNING, "connect failed (%r), retry in %d ms" % (e, wait))
            if raise_errors:
                raise e
            return False
        self._attempt = 0
        self.connects += 1
        self._last_ping = clock.ticks_ms()
        self._set_state(CONNECTED, "connected")
        self._log(INFO, "connected")
        try:
            self._after_connect()
        except (OSError, ProtocolError) as e:
            self._lost(e)
        return True

    def _after_connect(self):
        if self._desired_cb is not None:
            self._request(_GET, None, topics.twin_get_topic, b"")
        if self._reported is not None:
            patch, cbs = self._reported, self._reported_cbs
            self._reported, self._reported_cbs = None, []
            self.patch_reported(patch, _all_of(cbs) if cbs else None)
        self._flush()

    def _lost(self, exc):
        self.last_error = exc
        self._log(WARNING, "connection lost: %r" % (exc,))
        self._drop_transport(True)
        wait = self._delay_ms()
        self._attempt += 1
        self._retry_at = self._clock.ticks_add(self._clock.ticks_ms(), wait)
        self._set_state(WAITING, "connection lost")

    # ------------------------------------------------------------------ the loop
    def poll(self):
        """Do what is due now: read messages, keepalive, token renewal, reconnect, timeouts.

        Never blocks for long (reads are non-blocking; a reconnect blocks for one attempt).
        Raises ``AuthError`` only when a reconnect is refused for bad credentials.
        """
        clock = self._clock
        now = clock.ticks_ms()
        if self.state == CONNECTED:
            try:
                self._mqtt.check_msg()
            except Exception as e:
                # Callbacks are guarded in _on_message, so whatever escapes is the transport's
                # (umqtt.simple even raises AssertionError on a bad packet): reconnect.
                self._lost(e)
            else:
                try:
                    self._maintain(now)
                except (OSError, ProtocolError) as e:
                    self._lost(e)
        elif self.state == WAITING and clock.ticks_diff(now, self._retry_at) >= 0:
            self._try_connect(False)
        for rid, kind, cb in self._pending.expired(clock.ticks_ms()):
            self._log(WARNING, "twin request %s timed out" % rid)
            self._finish(kind, cb, 0, None, None)

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
            # Renewal is due. Publish nothing new and let the PUBACKs of what is in flight come
            # in first, so a renewal does not turn into duplicates; wait at most half the margin.
            self._draining = True
            if self._sent and left > self._margin // 2:
                return
            self._log(INFO, "renewing the SAS token")
            self._drop_transport(False)
            self._attempt = 0
            self._draining = False
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
        ``$.ct``, ``$.ce``). Returns True if published now, False if queued (offline or window
        full); the queue drops its oldest message when full.
        """
        if not isinstance(body, (bytes, bytearray, str)):
            body = json.dumps(body)
        cached = self._topic
        if cached is not None and cached[0] is properties:
            topic = cached[1]
        else:
            topic = topics.telemetry_topic(self.device_id, properties, self.module_id)
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
        return (
            self.state == CONNECTED
            and not self._draining
            and not len(self._queue)
            and len(self._sent) < self._max_inflight
        )

    def _publish_telemetry(self, item):
        try:
            pid = self._mqtt.publish(item[0], item[1], False, 1)
        except (OSError, ProtocolError):
            self._queue.push_front(item)
            raise
        if pid:  # None: the transport waited for the PUBACK itself (umqtt.simple)
            self._sent[pid] = item

    def _flush(self):
        if self._draining:
            return
        while self.state == CONNECTED and len(self._queue) and len(self._sent) < self._max_inflight:
            self._publish_telemetry(self._queue.pop())

    def _on_puback(self, pid):
        self._sent.pop(pid, None)

    def _on_oversize(self, topic, size):
        self._log(ERROR, "a %d-byte message did not fit the receive buffer and was dropped" % size)

    # ------------------------------------------------------------------ twin
    def _request(self, kind, cb, topic_fn, body, keep=False):
        # keep: the body stays with the request until its answer (a reported patch sent again
        # after a reconnect is what was sent, whatever the application did to its dict since).
        rid = self._pending.add(kind, cb, self._clock.ticks_ms(), self._req_timeout, body if keep else None)
        try:
            self._mqtt.publish(topic_fn(rid), body, False, 0)
        except Exception:
            self._pending.pop(rid)
            raise
        return rid

    def get_twin(self, cb=None, timeout_ms=None):
        """GET the whole twin.

        With ``cb``: returns at once; later ``cb(twin: dict | None, status: int)`` (status 0 and
        None on timeout). Without: blocks, polling, and returns the twin dict, or raises
        ``TimeoutError_`` / ``IoTHubError``.
        """
        if self.state != CONNECTED:
            raise NotConnected("get_twin needs a connection")
        if cb is not None:
            return self._request(_GET, cb, topics.twin_get_topic, b"")
        box = []

        def done(twin, status):
            box.append((twin, status))

        self._request(_GET, done, topics.twin_get_topic, b"")
        self._wait(box, timeout_ms)
        twin, status = box[0]
        if status == 0:
            raise TimeoutError_("twin GET timed out")
        if twin is None:
            raise IoTHubError("twin GET failed with status %d" % status)
        return twin

    def _wait(self, box, timeout_ms):
        clock = self._clock
        start = clock.ticks_ms()
        limit = timeout_ms or self._req_timeout
        while not box:
            self.poll()
            if box:
                break
            if self.state != CONNECTED or clock.ticks_diff(clock.ticks_ms(), start) > limit:
                box.append((None, 0))
                break
            clock.sleep_ms(10)

    def patch_reported(self, patch, cb=None):
        """Update reported properties (``None`` deletes). Offline, patches are merged and sent
        after the next connect, as are patches the hub had not answered when the link went.
        ``cb(status, version)`` hears the answer (status 0: timeout)."""
        if self.state == CONNECTED:
            try:
                return self._request(_PATCH, cb, topics.twin_patch_topic, json.dumps(patch), True)
            except (OSError, ProtocolError) as e:
                self._lost(e)
        self._hold_reported(patch, cb)
        return None

    def _hold_reported(self, patch, cb):
        self._reported = combine_patches(self._reported or {}, patch)
        if cb is not None:
            self._reported_cbs.append(cb)

    def twin_version(self):
        """``$version`` of the desired properties held (-1 before the first GET)."""
        return self._twin.version

    def desired(self):
        """The desired properties as last synchronised."""
        return self._twin.desired

    def _finish(self, kind, cb, status, version, body):
        # Complete a twin request: parse the body of a GET, call the application back.
        try:
            if kind == _GET:
                twin = None
                if status == 200 and body:
                    twin = json.loads(body)
                    desired = twin.get("desired")
                    if isinstance(desired, dict) and too_deep(desired):
                        raise ProtocolError("twin nested deeper than IoT Hub allows")
                    if isinstance(desired, dict) and self._twin.apply_full(desired):
                        self._call_desired(self._twin.desired, self._twin.version, True)
                if cb:
                    cb(twin, status)
            elif cb:
                cb(status, version)
        except Exception as e:  # a bad body or an application bug: reported, never raised
            self._log(ERROR, "twin request failed: %r" % (e,))

    def _call_desired(self, desired, version, full):
        if self._desired_cb:
            try:
                self._desired_cb(desired, version, full)
            except Exception as e:
                self._log(ERROR, "desired callback failed: %r" % (e,))

    # ------------------------------------------------------------------ inbound dispatch
    def _on_message(self, topic, msg):
        # Called by the transport from inside check_msg/subscribe. A malformed topic is logged
        # and dropped; it never tears the session down.
        try:
            topic = topic.decode() if isinstance(topic, (bytes, bytearray)) else topic
            res = topics.parse_twin_res(topic)
            if res is not None:
                item = self._pending.pop(res[1])
                if item is None:
                    self._log(DEBUG, "twin response for unknown $rid")
                else:
                    self._finish(item[0], item[1], res[0], res[2], msg)
                return
            version = topics.parse_twin_desired(topic)
            if version is not None:
                patch = json.loads(msg)
                if not isinstance(patch, dict):
                    raise ProtocolError("desired patch is not a JSON object")
                if too_deep(patch):
                    raise ProtocolError("desired patch nested deeper than IoT Hub allows")
                if self._twin.apply_patch(version, patch):
                    patch.pop("$version", None)
                    self._call_desired(patch, version, False)
                else:
                    self._log(INFO, "stale desired patch %d ignored" % version)
                return
            req = topics.parse_method(topic)
            if req is not None:
                self._answer_method(req[0], req[1], msg)
                return
            if not self.module_id:
                props = topics.parse_c2d(topic, self.device_id)
                if props is not None:
                    if self._c2d_cb:
                        try:
                            self._c2d_cb(msg, props)
                        except Exception as e:
                            self._log(ERROR, "C2D callback failed: %r" % (e,))
                    return
            self._log(WARNING, "message on an unexpected topic dropped")
        except OSError:
            raise  # the link: the transport's caller reconnects
        except Exception as e:  # malformed, too big for the heap (MemoryError), too deep: dropped
            self._log(WARNING, "malformed message dropped: %r" % (e,))

    def _answer_method(self, name, rid, msg):
        handler = self._methods.get(name)
        status = 200
        if handler is None:
            status, payload = 404, {"message": "unknown method: " + name}
        else:
            try:
                payload = json.loads(msg) if msg else None
            except ValueError:
                handler = None
                status, payload = 400, {"message": "payload is not JSON"}
        if handler is not None:
            try:
                result = handler(payload)
                status, payload = result
                status = int(status)
            except Exception as e:
                status, payload = 500, {"error": str(e) or type(e).__name__}
        try:
            body = json.dumps(payload)
        except (TypeError, ValueError):
            status, body = 500, '{"error": "method result is not JSON-serialisable"}'
        self._mqtt.publish(topics.method_res_topic(status, rid), body, False, 0)

    # ------------------------------------------------------------------ file upload
    def upload_file(self, path, blob_name, progress=None, chunk_size=4096, **kw):
        """Upload a file through the hub's blob storage (see ``iothub.upload``); lazily imported."""
        import gc

        # Collected here, at a shallow stack: the imports below need their bytecode in pieces of a
        # few KB, and garbage still reachable from deeper frames made them fail (MemoryError for
        # 3 KB with 60 KB free, seen on the unix port at an ESP32's heap).
        gc.collect()
        from iothub.upload import upload_file

        return upload_file(
            path,
            blob_name,
            host=self._https_host,
            hub_host=self._host,
            device_id=self.device_id,
            token=self._make_token(self._clock.time() + self._ttl),
            ca=self._ssl,
            chunk_size=chunk_size,
            progress=progress,
            clock=self._clock,
            jitter=self._jitter,
            **kw
        )
