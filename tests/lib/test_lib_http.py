"""The streaming HTTP/1.1 client against scripted server bytes (fake socket)."""

import pytest

from lib_fakes import FakeSocket
from iothub.errors import ProtocolError
from iothub.http import HTTPConnection


def conn(*socks):
    socks = list(socks)
    c = HTTPConnection("h.example", 443, sock_factory=lambda h, p: socks.pop(0))
    return c


def test_request_head_and_short_body_in_one_write():
    s = FakeSocket(b"HTTP/1.1 204 No Content\r\n\r\n")
    c = conn(s)
    c.request("POST", "/x?a=1", [("Authorization", "SAS"), ("Content-Type", "application/json")], '{"a":1}')
    assert s.writes == [
        b"POST /x?a=1 HTTP/1.1\r\nHost: h.example\r\nAuthorization: SAS\r\n"
        b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
    ]
    r = c.getresponse("POST")
    assert r.status == 204 and r.read() == b""


def test_content_length_body_split_across_reads_and_keep_alive():
    s = FakeSocket(b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 11\r\nX-Other: y\r\n\r\nhello", b" world")
    c = conn(s)
    c.request("GET", "/")
    r = c.getresponse()
    assert r.headers == {"content-length": "11"}
    assert r.read() == b"hello world"
    s.feed(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    c.request("PUT", "/b", length=3)
    c.send(b"abc")
    assert c.getresponse("PUT").status == 201
    assert c.opened == 1 and not s.closed


def test_chunked_body_with_extensions_and_trailers():
    s = FakeSocket(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n", b"1\r\n \r\n5\r\nworld\r\n0\r\nT: 1\r\n\r\n")
    c = conn(s)
    c.request("GET", "/")
    assert c.getresponse().read() == b"hello world"
    assert not s.closed  # read to its end: reusable


def test_body_until_close_and_connection_close():
    s = FakeSocket(b"HTTP/1.0 200 OK\r\n\r\nabc", b"def")
    s.eof = True
    c = conn(s)
    c.request("GET", "/")
    assert c.getresponse().read() == b"abcdef"
    assert s.closed and c.sock is None
    s2 = FakeSocket(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nz")
    c2 = conn(s2)
    c2.request("GET", "/")
    assert c2.getresponse().read() == b"z" and s2.closed


def test_stale_kept_alive_connection_is_replaced_once():
    s1 = FakeSocket(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    s2 = FakeSocket(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c = conn(s1, s2)
    c.request("GET", "/1")
    c.getresponse()
    s1.closed = True  # the server closed it while idle: the next write fails
    c.request("GET", "/2")
    assert c.getresponse().read() == b"ok" and c.opened == 2


def test_unread_body_is_drained_before_the_next_request():
    s = FakeSocket(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", b"HTTP/1.1 204 No Content\r\n\r\n")
    c = conn(s)
    c.request("GET", "/")
    c.getresponse()
    c.request("GET", "/")
    assert c.getresponse().status == 204


def test_100_continue_is_skipped_and_long_headers_are_cut():
    s = FakeSocket(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-Long: " + b"a" * 1000 + b"\r\nContent-Length: 2\r\n\r\nhi")
    c = conn(s)
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"hi"


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    ],
)
def test_malformed_responses_raise_protocol_error(data):
    c = conn(FakeSocket(data))
    c.request("GET", "/")
    with pytest.raises(ProtocolError):
        c.getresponse()


def test_bad_chunks_and_truncated_bodies_raise():
    s = FakeSocket(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    c = conn(s)
    c.request("GET", "/")
    with pytest.raises(ProtocolError, match="chunk size"):
        c.getresponse().read()
    s = FakeSocket(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    s.eof = True
    c = conn(s)
    c.request("GET", "/")
    with pytest.raises(ProtocolError, match="closed inside the body"):
        c.getresponse().read()


def test_read_limit_protects_memory():
    s = FakeSocket(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
    c = conn(s)
    c.request("GET", "/")
    with pytest.raises(ProtocolError, match="longer than 4096"):
        c.getresponse().read(4096)
