"""The API an application writes against: ``IoTHubClient``, the session of ``iothub.session``
(connect, renewal, keepalive, backoff, telemetry window and queue) with the device twin, direct
methods and file upload on top. What comes in is handled by ``iothub.inbound``, imported per
message (``iothub.transient``): run in place, it holds no heap between messages.

After every connect the twin is fetched if a desired-properties callback is set (applied only if
its ``$version`` is newer) and the reported properties patched while offline are sent. A twin
request the hub had not answered when the link went is made again, or its callback hears
status 0.
"""

import json

from iothub import transient
from iothub.errors import ConfigError, NotConnected, ProtocolError
from iothub.pending import Pending
from iothub.session import (  # noqa: F401 - the names an application imports from here
    CONNECTED,
    DEBUG,
    ERROR,
    FAILED,
    IDLE,
    INFO,
    RENEWING,
    WAITING,
    WARNING,
    Session,
    default_transport,
)

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_GET = const(1)
_PATCH = const(2)


class IoTHubClient(Session):
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
    :param reserved: what ``iothub.session.reserve()`` took at boot: the MQTT receive buffer
        (``bufsize`` is then its length) and an empty TLS context the CA is loaded into.
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
        reserved=None,
    ):
        if isinstance(connection_string, str):
            from iothub import transient

            connection_string = transient("iothub.connstr").parse(connection_string)
        super().__init__(connection_string, ca, port, keepalive, token_ttl, renew_margin, queue_len, max_inflight,
                         bufsize, (min_backoff_ms, max_backoff_ms, jitter_ms), model_id, transport, clock, jitter,
                         log, log_level, sock_factory, timeout, reserved)
        self._req_timeout = request_timeout_ms
        self._pending = Pending(8, self._clock.ticks_diff)
        self._twin = [-1, {}]  # desired properties: [$version (-1 before a GET), the document]
        self._reported = None  # merged reported patches waiting for a connection
        self._reported_cbs = []  # their callbacks
        self._c2d_cb = None
        self._desired_cb = None
        self._methods = {}
        self._resync = False  # a message was dropped for want of heap: fetch the twin again

    # ------------------------------------------------------------------ registration
    def on_c2d(self, cb):
        """``cb(body: bytes, properties: dict)`` for each cloud-to-device message."""
        self._c2d_cb = cb

    def on_method(self, name, cb):
        """``cb(payload) -> (status, payload)`` answers direct method ``name``. ``payload`` is
        the parsed JSON (None if empty). A raised exception is answered 500 with its text.
        ``name`` None: ``cb(name, payload)`` answers every method without a handler of its own
        (one callback for many methods, rather than one function object each); without it, such
        a method is answered 404."""
        self._methods[name] = cb

    def on_desired(self, cb):
        """``cb(desired: dict, version: int, full: bool)``: ``full`` is True for the whole desired
        document after a (re)connect, False for a patch (``None`` values delete)."""
        self._desired_cb = cb

    # ------------------------------------------------------------------ the session's hooks
    def poll(self):
        """The session's ``poll()``, then twin requests past their deadline hear status 0."""
        super().poll()
        if self._resync and self.is_connected():
            # Collected since: the desired patch that may have been lost comes back with the
            # whole twin, applied only if newer. Still short of heap, or eight requests already
            # waiting: tried again at the next poll.
            try:
                self._request(_GET, None, b"")
                self._resync = False
            except (OSError, ProtocolError) as e:
                self._lost(e)
            except (MemoryError, ConfigError):
                pass
        expired = self._pending.expired(self._clock.ticks_ms())
        if expired:
            transient("iothub.inbound").give_up(self, expired, "twin request %s timed out")

    def _on_up(self):
        self._resync = False  # the GET below (or no desired callback) covers it
        if self._desired_cb is not None:
            self._request(_GET, None, b"")
        if self._reported is not None:
            patch, cbs = self._reported, self._reported_cbs
            self._reported, self._reported_cbs = None, []
            self.patch_reported(patch, transient("iothub.inbound").all_of(cbs) if cbs else None)

    def _on_down(self):
        # Reported patches the hub did not answer go out again after the next connect (an
        # acknowledgement of a desired patch must not be lost with the link); older first, the
        # ones patched while offline on top.
        held, held_cbs = self._reported, self._reported_cbs
        self._reported, self._reported_cbs = None, []
        again, lost = [], []
        for rid, kind, cb, body in self._pending.clear():
            if kind == _PATCH and body is not None:
                again.append((json.loads(body), cb))
            else:
                lost.append((rid, kind, cb))
        if held is not None:
            again.append((held, None))
        if again:
            self._hold_reported(again)
        self._reported_cbs.extend(held_cbs)
        if lost:
            transient("iothub.inbound").give_up(self, lost, None)

    # ------------------------------------------------------------------ twin
    def _request(self, kind, cb, body, keep=False):
        # keep: the body stays with the request until its answer (a reported patch sent again
        # after a reconnect is what was sent, whatever the application did to its dict since).
        rid = self._pending.add(kind, cb, self._clock.ticks_ms(), self._req_timeout, body if keep else None)
        # topics.twin_get_topic / twin_patch_topic, spelt out: a rid is digits, so nothing to
        # quote, and a reported patch (the facts report, an acknowledgement) loads no module.
        topic = "$iothub/twin/GET/?$rid=" if kind == _GET else "$iothub/twin/PATCH/properties/reported/?$rid="
        try:
            self._mqtt.publish(topic + rid, body, False, 0)
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
        if cb is None:
            return transient("iothub.inbound").get_twin(self, timeout_ms)
        if not self.is_connected():
            raise NotConnected("get_twin needs a connection")
        return self._request(_GET, cb, b"")

    def patch_reported(self, patch, cb=None):
        """Update reported properties (``None`` deletes). Offline, patches are merged and sent
        after the next connect, as are patches the hub had not answered when the link went.
        ``cb(status, version)`` hears the answer (status 0: timeout)."""
        if self.is_connected():
            try:
                return self._request(_PATCH, cb, json.dumps(patch), True)
            except (OSError, ProtocolError) as e:
                self._lost(e)
        self._hold_reported(((patch, cb),))
        return None

    def _hold_reported(self, items):
        # (patch, callback) pairs, oldest first, folded into what waits for a connection.
        combine = transient("iothub.twin").combine_patches
        for patch, cb in items:
            self._reported = combine(self._reported or {}, patch)
            if cb is not None:
                self._reported_cbs.append(cb)

    def twin_version(self):
        """``$version`` of the desired properties held (-1 before the first GET)."""
        return self._twin[0]

    def desired(self):
        """The desired properties as last synchronised."""
        return self._twin[1]

    # ------------------------------------------------------------------ inbound dispatch
    def _on_message(self, topic, msg):
        # Called by the transport from inside check_msg/subscribe (iothub.inbound does the
        # work). A malformed message is logged and dropped; it never tears the session down.
        try:
            transient("iothub.inbound").dispatch(self, topic, msg)
        except OSError:
            raise  # the link: the transport's caller reconnects
        except MemoryError as e:
            # No block for what taking it in needs, in a fragmented heap. Not lost: a C2D
            # message (QoS 1, the only kind on devices/...) goes unacknowledged, so the hub sends
            # it again on the next connection; if it was a desired patch, the next poll fetches
            # the whole twin.
            self._log(WARNING, "message not taken in, heap short: %r" % (e,))
            if topic.startswith(b"devices/" if isinstance(topic, (bytes, bytearray)) else "devices/"):
                return False
            if self._desired_cb is not None:
                self._resync = True
        except Exception as e:  # malformed or too deep: dropped
            self._log(WARNING, "malformed message dropped: %r" % (e,))

    # ------------------------------------------------------------------ file upload
    def upload_file(self, path, blob_name, progress=None, chunk_size=4096, **kw):
        """Upload a file through the hub's blob storage (see ``iothub.upload``); lazily imported."""
        import gc

        # Collected here, at a shallow stack: the imports below need their bytecode in pieces of a
        # few KB, and garbage still reachable from deeper frames made them fail (MemoryError for
        # 3 KB with 60 KB free, seen on the unix port at an ESP32's heap).
        gc.collect()
        from iothub.upload import upload_file

        # The upload blocks the session, which reads nothing meanwhile: its receive buffer is
        # the upload's, rather than a second 2 KB block from a fragmented heap.
        m = self._mqtt
        lent = m.lend(True) if hasattr(m, "lend") else None
        try:
            return upload_file(
                path,
                blob_name,
                host=self._cred[3],
                hub_host=self._cred[0],
                device_id=self.device_id,
                token=self._make_token(self._clock.time() + self._ttl),
                ca=self._ssl,
                chunk_size=chunk_size,
                progress=progress,
                clock=self._clock,
                jitter=self._jitter,
                buffer=lent,
                **kw
            )
        finally:
            if lent is not None:
                m.lend(False)
