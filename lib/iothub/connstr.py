"""Device and module connection strings: ``HostName=...;DeviceId=...;SharedAccessKey=...``.

``parse()`` checks every segment and raises ``ConfigError`` naming what is wrong (the segment
number, the key name), never the key's value, so a log of the error leaks no secret.
"""

from iothub.errors import ConfigError

try:
    import binascii
except ImportError:  # pragma: no cover - some very small ports name it ubinascii
    import ubinascii as binascii

# Keys a device or module connection string may carry, and the attribute each fills.
_KEYS = {
    "HostName": "host",
    "DeviceId": "device_id",
    "SharedAccessKey": "key",
    "ModuleId": "module_id",
    "GatewayHostName": "gateway",
    "SharedAccessKeyName": "key_name",
}


class ConnectionString:
    """A parsed connection string. ``key`` is the base64 text of the key; ``repr`` hides it."""

    def __init__(self):
        self.host = None
        self.device_id = None
        self.key = None
        self.module_id = None
        self.gateway = None
        self.key_name = None

    def __repr__(self):
        return "<ConnectionString host=%s device=%s module=%s gateway=%s key=***>" % (
            self.host,
            self.device_id,
            self.module_id,
            self.gateway,
        )

    __str__ = __repr__

    def key_bytes(self):
        """The decoded signing key (bytes)."""
        return binascii.a2b_base64(self.key.encode())

    def connect_host(self):
        """Where sockets go: the gateway if one is given, else the hub. May carry ``:port``."""
        return self.gateway or self.host


def _is_base64(text):
    # a2b_base64 is lenient on some ports: check the alphabet and the length ourselves.
    if not text or len(text) % 4:
        return False
    pad = 0
    for ch in text:
        if ch == "=":
            pad += 1
        elif pad or not (ch.isalpha() or ch.isdigit() or ch == "+" or ch == "/"):
            return False
    if pad > 2:
        return False
    try:
        return len(binascii.a2b_base64(text.encode())) > 0
    except ValueError:
        return False


def parse(text):
    """Parse a connection string; return a ``ConnectionString`` or raise ``ConfigError``.

    Required: HostName, DeviceId, SharedAccessKey (X.509 authentication is not supported).
    Optional: ModuleId, GatewayHostName, SharedAccessKeyName.
    """
    if not isinstance(text, str):
        raise ConfigError("connection string: expected a str")
    cs = ConnectionString()
    seen = []
    index = 0
    for segment in text.strip().split(";"):
        index += 1
        if not segment:
            if index == 1:
                raise ConfigError("connection string: empty")
            continue  # a trailing ';' is common and harmless
        eq = segment.find("=")
        if eq <= 0:
            # Never echo the segment: it may be the key without its name.
            raise ConfigError("connection string: segment %d is not Name=value" % index)
        name = segment[:eq].strip()
        value = segment[eq + 1 :].strip()
        attr = _KEYS.get(name)
        if attr is None:
            if name == "x509":
                raise ConfigError("connection string: X.509 authentication is not supported")
            # Echo the name only when it cannot be (part of) a key: IoT Hub keys are at least
            # 16 bytes, 22+ base64 characters before any '=' padding.
            if 0 < len(name) <= 20 and name.isalpha():
                raise ConfigError("connection string: unknown name '%s' in segment %d" % (name, index))
            raise ConfigError("connection string: unknown name in segment %d" % index)
        if name in seen:
            raise ConfigError("connection string: %s given twice" % name)
        if not value:
            raise ConfigError("connection string: %s is empty" % name)
        seen.append(name)
        setattr(cs, attr, value)
    for name in ("HostName", "DeviceId", "SharedAccessKey"):
        if name not in seen:
            raise ConfigError("connection string: %s is missing" % name)
    if not _is_base64(cs.key):
        raise ConfigError("connection string: SharedAccessKey is not valid base64")
    if "/" in cs.host or " " in cs.host:
        raise ConfigError("connection string: HostName is not a host name")
    for name, value in (("DeviceId", cs.device_id), ("ModuleId", cs.module_id)):
        if value is not None and ("/" in value or "#" in value or "+" in value):
            raise ConfigError("connection string: %s contains '/', '#' or '+'" % name)
    return cs
