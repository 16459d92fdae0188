"""What comes in from the hub for ``IoTHubClient``, and the end of its twin requests: twin
responses, desired patches (with the twin's ``$version`` bookkeeping), direct-method requests
and their answers, C2D messages, a blocking twin GET. Seldom, next to the loop's polling: the
client imports it with ``iothub.transient`` for each message, so run in place it holds no heap
between messages, and neither do ``topics``' parsers nor ``twin``.
"""

import json

from iothub import transient
from iothub.errors import IoTHubError, NotConnected, ProtocolError, TimeoutError_

# Held by this module's names only, not by sys.modules: they go when it goes.
topics = transient("iothub.topics")
twin = transient("iothub.twin")

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_GET = const(1)  # as iothub.client's
# log levels, as iothub.session's
_ERROR = const(1)
_WARNING = const(2)
_INFO = const(3)
_DEBUG = const(4)


def dispatch(client, topic, msg):
    """One inbound PUBLISH. Raises on a malformed one (the client logs and drops it)."""
    topic = topic.decode() if isinstance(topic, (bytes, bytearray)) else topic
    res = topics.parse_twin_res(topic)
    if res is not None:
        item = client._pending.pop(res[1])
        if item is None:
            client._log(_DEBUG, "twin response for unknown $rid")
        else:
            finish(client, item[0], item[1], res[0], res[2], msg)
        return
    version = topics.parse_twin_desired(topic)
    if version is not None:
        patch = json.loads(msg)
        if not isinstance(patch, dict):
            raise ProtocolError("desired patch is not a JSON object")
        if twin.too_deep(patch):
            raise ProtocolError("desired patch nested deeper than IoT Hub allows")
        applied = twin.apply(client._twin, version, patch, False)
        if applied is not None:
            _call_desired(client, applied, version, False)
        else:
            client._log(_INFO, "stale desired patch %d ignored" % version)
        return
    req = topics.parse_method(topic)
    if req is not None:
        _answer_method(client, req[0], req[1], msg)
        return
    if not client.module_id:
        props = topics.parse_c2d(topic, client.device_id)
        if props is not None:
            if client._c2d_cb:
                try:
                    client._c2d_cb(msg, props)
                except Exception as e:
                    client._log(_ERROR, "C2D callback failed: %r" % (e,))
            return
    client._log(_WARNING, "message on an unexpected topic dropped")


def finish(client, kind, cb, status, version, body):
    """Complete a twin request: take a GET's desired section if newer, call the application back."""
    try:
        if kind == _GET:
            doc = None
            if status == 200 and body:
                doc = json.loads(body)
                desired = doc.get("desired")
                if isinstance(desired, dict):
                    if twin.too_deep(desired):
                        raise ProtocolError("twin nested deeper than IoT Hub allows")
                    version = desired.get("$version")
                    if twin.apply(client._twin, version, desired, True) is not None:
                        _call_desired(client, client._twin[1], version, True)
            if cb:
                cb(doc, status)
        elif cb:
            cb(status, version)
    except Exception as e:  # a bad body or an application bug: reported, never raised
        client._log(_ERROR, "twin request failed: %r" % (e,))


def give_up(client, items, text):
    """``(rid, kind, callback)`` twin requests that will not be answered (past their deadline,
    or the link went): each callback hears status 0; ``text`` (if any, with a ``%s`` for the
    rid) is logged for each. Names the library already has: each new one is a qstr for good."""
    for rid, kind, cb in items:
        if text:
            client._log(_WARNING, text % rid)
        finish(client, kind, cb, 0, None, None)


def _call_desired(client, desired, version, full):
    if client._desired_cb:
        try:
            client._desired_cb(desired, version, full)
        except Exception as e:
            client._log(_ERROR, "desired callback failed: %r" % (e,))


def _answer_method(client, name, rid, msg):
    methods = client._methods
    handler = methods.get(name)
    catch_all = handler is None
    if catch_all:
        handler = methods.get(None)
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
            result = handler(name, payload) if catch_all else handler(payload)
            status, payload = result
            status = int(status)
        except Exception as e:
            status, payload = 500, {"error": str(e) or type(e).__name__}
    try:
        body = json.dumps(payload)
    except (TypeError, ValueError):
        status, body = 500, '{"error": "method result is not JSON-serialisable"}'
    client._mqtt.publish(topics.method_res_topic(status, rid), body, False, 0)


def all_of(callbacks):
    """One callback for a merged reported patch: each patch merged into it hears the answer."""

    def call(status, version):
        for cb in callbacks:
            cb(status, version)

    return call


def get_twin(client, timeout_ms):
    """``IoTHubClient.get_twin()`` without a callback: poll until the answer or the timeout."""
    if not client.is_connected():
        raise NotConnected("get_twin needs a connection")
    box = []

    def done(doc, status):
        box.append((doc, status))

    client._request(_GET, done, b"")
    clock = client._clock
    start = clock.ticks_ms()
    limit = timeout_ms or client._req_timeout
    while not box:
        client.poll()
        if box:
            break
        if not client.is_connected() or clock.ticks_diff(clock.ticks_ms(), start) > limit:
            box.append((None, 0))
            break
        clock.sleep_ms(10)
    doc, status = box[0]
    if status == 0:
        raise TimeoutError_("twin GET timed out")
    if doc is None:
        raise IoTHubError("twin GET failed with status %d" % status)
    return doc
