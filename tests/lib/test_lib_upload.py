"""File upload end to end over real TLS sockets: the device library (through MicroPython-like
socket/ssl modules) against lib_upload_server.py, a hub + blob-storage stand-in in a subprocess."""

import gc
import hashlib
import http.client
import json
import os
import pathlib
import ssl
import subprocess
import sys
import tracemalloc

import pytest

import lib_mpnet
from lib_fakes import FakeClock
from iothub import net, sas
from iothub.client import IoTHubClient
from iothub.errors import HTTPError
from iothub.upload import upload_file

HERE = pathlib.Path(__file__).resolve().parent
TOKEN = "SharedAccessSignature sr=hub%2Fdevices%2Fdev1&sig=x&se=1"


class Server:
    def __init__(self, pki):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "lib_upload_server.py"), str(pki["server.pem"]), str(pki["server.key"])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.proc.stdout.readline())
        self._ctx = ssl.create_default_context(cafile=str(pki["ca.pem"]))

    def _call(self, method, path, body=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self._ctx, timeout=10)
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return data

    def config(self, **faults):
        self._call("POST", "/_config", json.dumps(faults))

    def state(self):
        return json.loads(self._call("GET", "/_state"))

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def server(pki):
    s = Server(pki)
    yield s
    s.stop()


@pytest.fixture
def up(server, pki, tmp_path):
    """Run upload_file against the server with MicroPython-like sockets; returns a helper."""
    net.use(lib_mpnet.SOCKET, lib_mpnet.SSL)
    server.config()
    clock = FakeClock()

    def run(data, chunk_size=4096, ca=None, path=None, **kw):
        if path is None:
            path = tmp_path / "f.bin"
            path.write_bytes(data)
        return upload_file(
            str(path),
            kw.pop("blob_name", "logs/today.bin"),
            host="127.0.0.1:%d" % server.port,
            hub_host="hub.example.net",
            device_id="dev1",
            token=TOKEN,
            ca=ca if ca is not None else pki["ca.der"].read_bytes(),
            chunk_size=chunk_size,
            clock=clock,
            **kw,
        )

    run.clock = clock
    yield run
    net.use()


def test_upload_blocks_block_list_and_notification(up, server):
    data = os.urandom(10000)
    progress = []
    result = up(data, chunk_size=4096, progress=lambda sent, total: progress.append((sent, total)))
    st = server.state()
    blob = "/devstoreaccount1/uploads/dev1/logs/today.bin"
    assert st["committed"][blob] == {
        "ids": ["MDAwMDAw", "MDAwMDAx", "MDAwMDAy"],
        "size": 10000,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    puts = [r for r in st["requests"] if r["method"] == "PUT"]
    assert [r["length"] for r in puts] == ["4096", "4096", "1808", str(len(_block_list(3)))]
    assert all(r["te"] is None for r in puts)
    assert all(r["host"] == "127.0.0.1:%d" % server.port for r in puts)
    posts = [r for r in st["requests"] if r["method"] == "POST"]
    assert [r["path"] for r in posts] == [
        "/devices/dev1/files?api-version=2021-04-12",
        "/devices/dev1/files/notifications?api-version=2021-04-12",
    ]
    assert all(r["host"] == "hub.example.net" and r["auth"] == TOKEN for r in posts)
    (note,) = st["notifications"]
    assert note == {
        "correlationId": "corr-1",
        "isSuccess": True,
        "statusCode": 201,
        "statusDescription": "uploaded 10000 bytes in 3 blocks",
    }
    assert result["isSuccess"] and result["notified"] and result["bytes"] == 10000
    assert result["blobName"] == "dev1/logs/today.bin"
    assert progress == [(4096, 10000), (8192, 10000), (10000, 10000)]
    # keep-alive: one connection to the hub, one to storage (+1: this /_state query)
    assert st["connections"] - 1 == 2


def _block_list(n):
    from iothub import blocks

    return "".join(
        ['<?xml version="1.0" encoding="utf-8"?><BlockList>']
        + ["<Latest>%s</Latest>" % blocks.block_id(i) for i in range(n)]
        + ["</BlockList>"]
    )


def test_empty_file_commits_an_empty_block_list(up, server):
    result = up(b"")
    st = server.state()
    assert list(st["committed"].values()) == [
        {"ids": [], "size": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    ]
    assert result["isSuccess"] and st["notifications"][0]["isSuccess"] is True


def test_failed_block_is_retried_with_backoff(up, server):
    server.config(block={"1": [503, 500]}, blocklist=[503])
    data = os.urandom(300)
    result = up(data, chunk_size=128)
    st = server.state()
    assert st["attempts"] == {"0": 1, "1": 3, "2": 1, "list": 2}
    assert list(st["committed"].values())[0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert up.clock.sleeps == [500, 1000, 500]  # min 500 ms doubling, jitter 0
    assert result["isSuccess"]


def test_storage_failure_is_notified_with_its_status(up, server):
    server.config(deny_block=1)
    result = up(os.urandom(1000), chunk_size=256)
    st = server.state()
    assert st["committed"] == {}
    (note,) = st["notifications"]
    assert note["isSuccess"] is False and note["statusCode"] == 403
    assert "Put Block failed with storage status 403" in note["statusDescription"]
    assert result["isSuccess"] is False and result["notified"] is True
    assert st["attempts"]["1"] == 1  # 403 is not retried


def test_retries_exhausted_are_notified(up, server):
    server.config(block={"0": [503, 503, 503, 503]})
    result = up(b"x" * 10, retries=3)
    note = server.state()["notifications"][0]
    assert note["isSuccess"] is False and note["statusCode"] == 503 and not result["isSuccess"]


def test_hub_refusing_the_upload_raises(up, server):
    server.config(files=401)
    with pytest.raises(HTTPError) as info:
        up(b"abc")
    assert info.value.status == 401
    assert server.state()["notifications"] == []


def test_server_certificate_is_verified(up, server, pki):
    from iothub.errors import TLSError

    with pytest.raises(TLSError, match="not verified"):
        up(b"abc", ca=pki["other-ca.der"].read_bytes(), retries=0)
    assert server.state()["requests"] == []


def test_der_ca_and_connection_close_servers(up, server, pki):
    server.config(close=True)
    result = up(os.urandom(600), chunk_size=256, ca=pki["ca.der"].read_bytes())
    st = server.state()
    assert result["isSuccess"]
    # no keep-alive: one connection per request (+1: this /_state query)
    assert st["connections"] - 1 == len(st["requests"]) == 6


def test_memory_does_not_grow_with_file_size(up, server, pki, tmp_path):
    ca = pki["ca.der"].read_bytes()

    def peak(size):
        path = tmp_path / ("f%d.bin" % size)
        path.write_bytes(b"\xa5" * size)  # before tracing starts
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            result = up(None, chunk_size=4096, ca=ca, path=path)
            return tracemalloc.get_traced_memory()[1] - base, result
        finally:
            tracemalloc.stop()

    peak(10 * 1024)  # warm-up: imports, caches
    small, r1 = peak(10 * 1024)
    big, r2 = peak(1024 * 1024)
    assert r1["isSuccess"] and r2["isSuccess"] and r2["bytes"] == 1024 * 1024
    assert server.state()["committed"]["/devstoreaccount1/uploads/dev1/logs/today.bin"]["size"] == 1024 * 1024
    assert abs(big - small) < 1024, (small, big)


def test_iothubclient_upload_file_uses_gateway_https_port_and_device_token(server, pki, tmp_path):
    import lib_vectors

    net.use(lib_mpnet.SOCKET, lib_mpnet.SSL)
    try:
        server.config()
        cs = "HostName=hub.example.net;DeviceId=dev1;SharedAccessKey=%s;GatewayHostName=127.0.0.1:%d" % (
            lib_vectors.KEY, server.port)
        client = IoTHubClient(cs, ca=pki["ca.der"].read_bytes(), clock=FakeClock(unix=1700000000))
        path = tmp_path / "r.txt"
        path.write_bytes(b"report")
        result = client.upload_file(str(path), "r.txt", chunk_size=256)
    finally:
        net.use()
    st = server.state()
    assert result["isSuccess"] and list(st["committed"].values())[0]["size"] == 6
    posts = [r for r in st["requests"] if r["method"] == "POST"]
    want = sas.token("hub.example.net/devices/dev1", lib_vectors.KEY, 1700000000 + 3600)
    assert all(r["auth"] == want and r["host"] == "hub.example.net" for r in posts)
