"""IoT Hub MQTT topics and property bags (builders and parsers).

A parser returns ``None`` for "not my topic" and raises ``ProtocolError`` for "my topic, but
malformed", so a dispatcher can try each parser in turn (STYLE lesson 3).

Property bags are ``k=v&k2=v2`` with keys and values URL-encoded. Values are strings; a key
without ``=`` maps to ``None`` (``k=`` to ``""``), as the official SDKs read it and the hub
writes it. System properties use their wire names: ``$.mid`` (message id),
``$.cid`` (correlation id), ``$.ct`` (content type), ``$.ce`` (content encoding).
"""

from iothub.errors import ProtocolError

_HEX = b"0123456789ABCDEF"
# Unreserved characters of RFC 3986: what urllib.parse.quote(s, safe="") leaves as is.
_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def quote(text, safe=""):
    """Percent-encode ``text`` (str or bytes) as UTF-8, like ``urllib.parse.quote(text, safe)``."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    keep = _UNRESERVED + safe.encode() if safe else _UNRESERVED
    n = 0
    for b in data:
        n += 1 if b in keep else 3
    if n == len(data):  # nothing to encode: no new string
        return text if isinstance(text, str) else data.decode()
    # One block of the exact length, not a list of one-character strings: a token's resource
    # made a 512-byte list at every connect, where the heap is tightest.
    out = bytearray(n)
    i = 0
    for b in data:
        if b in keep:
            out[i] = b
            i += 1
        else:
            out[i] = 0x25  # '%'
            out[i + 1] = _HEX[b >> 4]
            out[i + 2] = _HEX[b & 15]
            i += 3
    return str(out, "utf-8")


def unquote(text):
    """Decode ``%XX`` escapes (UTF-8). ``+`` stays ``+`` (IoT Hub bags are not form-encoded).

    Raises ``ValueError`` on a truncated or non-hex escape.
    """
    if "%" not in text:
        return text
    data = text.encode()
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == 0x25:  # '%'
            if i + 3 > n:
                raise ValueError("truncated %-escape")
            out.append((_hexval(data[i + 1]) << 4) | _hexval(data[i + 2]))
            i += 3
        else:
            out.append(b)
            i += 1
    return str(out, "utf-8")


def _hexval(b):
    if 0x30 <= b <= 0x39:
        return b - 0x30
    b |= 0x20  # lower case
    if 0x61 <= b <= 0x66:
        return b - 0x57
    raise ValueError("bad %-escape")

TWIN_RES_SUB = "$iothub/twin/res/#"
TWIN_DESIRED_SUB = "$iothub/twin/PATCH/properties/desired/#"
METHODS_SUB = "$iothub/methods/POST/#"

_TWIN_RES = "$iothub/twin/res/"
_TWIN_DESIRED = "$iothub/twin/PATCH/properties/desired/"
_METHOD_POST = "$iothub/methods/POST/"

# The names of the system properties a device may set on telemetry.
MESSAGE_ID = "$.mid"
CORRELATION_ID = "$.cid"
CONTENT_TYPE = "$.ct"
CONTENT_ENCODING = "$.ce"


def _pairs(props):
    # Accept a dict or a sequence of (key, value) pairs; pairs keep a fixed order, which
    # MicroPython dicts do not guarantee.
    if props is None:
        return ()
    if hasattr(props, "items"):
        return props.items()
    return props


def encode_bag(props):
    """``{"a": "1", "$.ct": "application/json"}`` -> ``a=1&%24.ct=application%2Fjson``.

    Keys keep ``$`` and ``.`` readable only where IoT Hub requires it: every key and value is
    URL-encoded, which the hub decodes (``$.ct`` as ``%24.ct`` is accepted and is what the
    official SDKs send).
    """
    parts = []
    for k, v in _pairs(props):
        if v is None:
            parts.append(quote(k))
        else:
            parts.append(quote(k) + "=" + quote(str(v)))
    return "&".join(parts)


def decode_bag(text):
    """``a=1&b=x%2Fy&c`` -> ``{"a": "1", "b": "x/y", "c": None}``. ``ProtocolError`` if malformed."""
    props = {}
    if not text:
        return props
    for part in text.split("&"):
        if not part:
            continue
        eq = part.find("=")
        try:
            if eq < 0:
                props[unquote(part)] = None
            else:
                key = unquote(part[:eq])
                if not key:
                    raise ProtocolError("property bag: empty key")
                props[key] = unquote(part[eq + 1 :])
        except ValueError:
            raise ProtocolError("property bag: bad %-escape")
    return props


def device_prefix(device_id, module_id=None):
    """``devices/{id}/`` or ``devices/{id}/modules/{mid}/``."""
    if module_id:
        return "devices/" + device_id + "/modules/" + module_id + "/"
    return "devices/" + device_id + "/"


def telemetry_topic(device_id, props=None, module_id=None):
    """``devices/{id}/messages/events/{bag}`` (module: ``devices/{id}/modules/{mid}/...``)."""
    return device_prefix(device_id, module_id) + "messages/events/" + encode_bag(props)


def c2d_sub(device_id):
    """The C2D subscription filter ``devices/{id}/messages/devicebound/#``."""
    return "devices/" + device_id + "/messages/devicebound/#"


def parse_c2d(topic, device_id):
    """Properties of a C2D message topic, or ``None`` if ``topic`` is not a C2D topic."""
    prefix = "devices/" + device_id + "/messages/devicebound/"
    if not topic.startswith(prefix):
        return None
    return decode_bag(topic[len(prefix) :])


def _query(rest, what):
    # rest is what follows the fixed prefix: "{segment}/?{bag}" or "{segment}/{bag}".
    slash = rest.find("/")
    if slash <= 0:
        raise ProtocolError(what + ": no '/' after the name")
    bag = rest[slash + 1 :]
    if bag.startswith("?"):
        bag = bag[1:]
    return rest[:slash], decode_bag(bag)


def _int(text, what):
    # int() accepts " 12", "+12" and "1_2" on CPython: a version or status must be plain digits.
    if not text or not text.isdigit() or len(text) > 10:
        raise ProtocolError(what + " is not a number")
    return int(text)


def twin_get_topic(rid):
    """PUBLISH an empty body here to GET the whole twin."""
    return "$iothub/twin/GET/?$rid=" + quote(str(rid))


def twin_patch_topic(rid):
    """PUBLISH a JSON patch of reported properties here."""
    return "$iothub/twin/PATCH/properties/reported/?$rid=" + quote(str(rid))


def parse_twin_res(topic):
    """``$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]`` -> ``(status, rid, version)``.

    ``version`` is ``None`` when absent (GET answers carry it in the body). ``None`` for a topic
    that is not a twin response.
    """
    if not topic.startswith(_TWIN_RES):
        return None
    status, bag = _query(topic[len(_TWIN_RES) :], "twin response")
    rid = bag.get("$rid")
    if not rid:
        raise ProtocolError("twin response: no $rid")
    version = bag.get("$version")
    return (
        _int(status, "twin response status"),
        rid,
        None if version is None else _int(version, "twin $version"),
    )


def parse_twin_desired(topic):
    """``$iothub/twin/PATCH/properties/desired/?$version={v}`` -> ``v`` (int), else ``None``."""
    if not topic.startswith(_TWIN_DESIRED):
        return None
    rest = topic[len(_TWIN_DESIRED) :]
    if rest.startswith("?"):
        rest = rest[1:]
    version = decode_bag(rest).get("$version")
    if version is None:
        raise ProtocolError("desired patch: no $version")
    return _int(version, "desired patch $version")


def parse_method(topic):
    """``$iothub/methods/POST/{name}/?$rid={rid}`` -> ``(name, rid)``, else ``None``."""
    if not topic.startswith(_METHOD_POST):
        return None
    name, bag = _query(topic[len(_METHOD_POST) :], "method request")
    rid = bag.get("$rid")
    if not rid:
        raise ProtocolError("method request: no $rid")
    return unquote(name), rid


def method_res_topic(status, rid):
    """Where a method's answer goes: ``$iothub/methods/res/{status}/?$rid={rid}``."""
    return "$iothub/methods/res/" + str(int(status)) + "/?$rid=" + quote(str(rid))
