"""HMAC-SHA256 (RFC 2104 on ``hashlib.sha256``) and IoT Hub SAS tokens.

Pure functions: the expiry is passed in (``unix_time()`` converts a port's ``time.time()``).
MicroPython has no ``hmac`` or ``urllib``, hence the small implementations here.
"""

import hashlib

from iothub import transient

try:
    import binascii
except ImportError:  # pragma: no cover
    import ubinascii as binascii

_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104: B)

# URL encoding lives with the property bags (iothub.topics). Like this module, which is loaded
# only to make a token, that module is loaded only while it is used (iothub.transient): these
# names keep it for as long as this module lives, and sys.modules does not keep it at all.
_topics = transient("iothub.topics")
quote, unquote = _topics.quote, _topics.unquote  # sas.quote is part of the API


def hmac_sha256(key, msg):
    """HMAC-SHA256 per RFC 2104: H((K ^ opad) || H((K ^ ipad) || msg)). Returns 32 bytes."""
    if isinstance(key, str):
        key = key.encode()
    if isinstance(msg, str):
        msg = msg.encode()
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(_BLOCK):
        k = key[i] if i < len(key) else 0
        ipad[i] = k ^ 0x36
        opad[i] = k ^ 0x5C
    inner = hashlib.sha256(ipad)
    inner.update(msg)
    outer = hashlib.sha256(opad)
    outer.update(inner.digest())
    return outer.digest()


def b64encode(data):
    """Standard base64 (with padding) as str, without the trailing newline."""
    return binascii.b2a_base64(data)[:-1].decode()


def resource_uri(host, device_id, module_id=None):
    """The ``sr`` resource of a device or module token (before URL encoding)."""
    if module_id:
        return host + "/devices/" + device_id + "/modules/" + module_id
    return host + "/devices/" + device_id


def string_to_sign(resource, expiry):
    """``urlenc(resource) + "\\n" + expiry``: what the key signs."""
    return quote(resource) + "\n" + str(int(expiry))


def token(resource, key, expiry, key_name=None):
    """A SAS token for ``resource`` valid until ``expiry`` (Unix seconds).

    ``key`` is the base64 text of the key (as in the connection string) or the decoded bytes.
    """
    if isinstance(key, str):
        key = binascii.a2b_base64(key.encode())
    expiry = int(expiry)
    sr = quote(resource)
    sig = quote(b64encode(hmac_sha256(key, sr + "\n" + str(expiry))))
    out = "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=" + str(expiry)
    if key_name:
        out += "&skn=" + key_name
    return out


def days_before_year(year):
    """Days from 1970-01-01 to January 1st of ``year`` (proleptic Gregorian)."""
    y = year - 1
    return y * 365 + y // 4 - y // 100 + y // 400 - 719162  # 719162 = same sum for 1970


def epoch_offset(epoch_year):
    """Seconds to add to a port's ``time.time()`` to get Unix time, given ``time.gmtime(0)[0]``.

    0 on ports counting from 1970 (Unix, CPython, webassembly); 946684800 on ESP32/ESP8266,
    which count from 2000-01-01. Computed from the year, so any other epoch works too.
    """
    return days_before_year(epoch_year) * 86400


def unix_time(port_seconds, epoch_year):
    """Unix seconds from a port's ``time.time()`` value and its epoch year."""
    return int(port_seconds) + epoch_offset(epoch_year)
