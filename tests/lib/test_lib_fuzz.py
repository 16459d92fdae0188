"""Hostile peers: arbitrary bytes from the server only ever produce the library's protocol
errors or OSError (connection closed), never IndexError/ValueError/a hang."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib_fakes import FakeSocket
from iothub.errors import ProtocolError
from iothub.http import HTTPConnection
from iothub.mqtt import MQTTClient, MQTTException

_chunks = st.lists(st.binary(min_size=1, max_size=40), max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_chunks)
def test_mqtt_reader_survives_garbage(chunks):
    sock = FakeSocket(b"\x20\x02\x00\x00", *chunks)
    sock.eof = True
    c = MQTTClient("d", "h", 8883, bufsize=64, sock_factory=lambda h, p: sock)
    c.set_callback(lambda t, m: None)
    c.connect()
    try:
        for _ in range(50):
            c.check_msg()
    except (ProtocolError, OSError, MQTTException):
        pass


@settings(max_examples=300, deadline=None)
@given(_chunks)
def test_mqtt_connect_survives_garbage(chunks):
    sock = FakeSocket(*chunks)
    sock.eof = True
    c = MQTTClient("d", "h", 8883, sock_factory=lambda h, p: sock)
    try:
        c.connect()
    except (ProtocolError, OSError, MQTTException):
        pass


_http = st.one_of(
    _chunks,
    st.builds(
        lambda status, headers, body: [b"HTTP/1.1 " + status + b" X\r\n" + headers + b"\r\n" + body],
        st.sampled_from([b"200", b"204", b"2x0", b"99", b"404"]),
        st.sampled_from([b"", b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"Content-Length: x\r\n"]),
        st.binary(max_size=40),
    ),
)


@settings(max_examples=300, deadline=None)
@given(_http)
def test_http_reader_survives_garbage(chunks):
    sock = FakeSocket(*chunks)
    sock.eof = True
    c = HTTPConnection("h", 443, sock_factory=lambda h, p: sock)
    c.request("GET", "/")
    try:
        c.getresponse().read(1024)
    except (ProtocolError, OSError):
        pass
