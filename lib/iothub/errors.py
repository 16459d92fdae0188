"""The library's exceptions: local misuse and bad configuration apart from a peer's fault.

No exception message ever contains a key, a token or a connection string: the callers pass
names and sizes, never secret values.

Subclasses call ``super().__init__()``: MicroPython's built-in exception classes have no
``__init__`` attribute, so ``Exception.__init__(self, ...)`` raises AttributeError there.
"""


class IoTHubError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(IoTHubError):
    """Local misuse: a malformed connection string, a bad argument, a buffer too small."""


class ProtocolError(IoTHubError):
    """The peer (hub, broker, HTTP server) sent something that breaks the protocol."""


class NotConnected(IoTHubError):
    """The operation needs a live connection and there is none right now."""


class TimeoutError_(IoTHubError):
    """A request got no answer in time. (Named with a trailing underscore: MicroPython 1.27
    has no built-in TimeoutError to subclass on every port, and CPython's must not be shadowed.)"""


class TLSError(ProtocolError):
    """The TLS handshake failed: the server's certificate did not verify against the CA, or its
    name did not match. Retried like a network failure (a captive portal passes); a wrong CA
    file keeps failing and says so in ``last_error``."""


class AuthError(IoTHubError):
    """The hub refused the credentials (CONNACK 4 or 5, HTTP 401/403).

    Retrying with the same token cannot help: the session stops reconnecting until the
    application calls ``connect()`` again (typically after fixing the clock with NTP).
    """

    def __init__(self, code, what="connection refused"):
        super().__init__(what + " (code " + str(code) + ")")
        self.code = code


class HTTPError(IoTHubError):
    """An HTTP request ended with a status the caller did not accept."""

    def __init__(self, status, what="HTTP request failed"):
        super().__init__(what + " (status " + str(status) + ")")
        self.status = status
