"""The device library against the real local hub (tools/localhub, a subprocess on its own
loopback address) over TLS, through MicroPython-like sockets: telemetry, C2D, methods, twin,
outage and reconnect, file upload into Azurite. Independent checks come from the hub's
service side (its REST API and azure-storage-blob)."""

import hashlib
import os
import threading
import time

import pytest

import lib_mpnet
from iothub import net
from iothub.client import WAITING, CONNECTED, IoTHubClient



@pytest.fixture(scope="module")
def hub(module_hub):
    return module_hub


@pytest.fixture
def device(hub, request):
    net.use(lib_mpnet.SOCKET, lib_mpnet.SSL)
    name = "dev-" + request.node.name[5:30].replace("_", "-")
    cs = hub.create_device(name)
    clients = []

    def make(**kw):
        kw.setdefault("port", hub.mqtt_port)
        kw.setdefault("ca", hub.ca_der)
        c = IoTHubClient(cs, keepalive=60, **kw)
        clients.append(c)
        return c

    make.name = name
    yield make
    for c in clients:
        c.disconnect()
    net.use()


def poll_until(client, cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met")
        client.poll()
        time.sleep(0.01)  # let the hub's process run; nothing here asserts timing


def test_telemetry_and_c2d(hub, device):
    c = device()
    got = []
    c.on_c2d(lambda body, props: got.append((body, props)))
    c.connect()
    assert c.send_telemetry(b'{"t": 21.5}', [("$.ct", "application/json"), ("$.ce", "utf-8"), ("$.mid", "m-1"), ("room", "a b")])
    poll_until(c, lambda: c.stats()["inflight"] == 0)
    (msg,) = hub.wait_telemetry(device.name, 1)
    assert msg["body"] == '{"t": 21.5}'
    assert msg["properties"] == {"room": "a b"}
    sysprops = {k.lower(): v for k, v in msg["systemProperties"].items()}
    assert sysprops.get("message-id") == "m-1" and sysprops.get("content-type") == "application/json"
    hub.send_c2d(device.name, "hello", {"k": "v"})
    poll_until(c, lambda: got)
    assert got[0][0] == b"hello" and got[0][1]["k"] == "v"


def test_a_c2d_message_the_heap_could_not_take_in_comes_again_on_the_next_connection(hub, device, monkeypatch):
    """MemoryError while a C2D message is taken in (a fragmented board heap): it is not
    acknowledged, so the hub, holding it, sends it again when the device next connects; the
    application hears it once, and the session was not torn down for it."""
    from iothub import inbound

    logs = []
    c = device(log=lambda level, text: logs.append(text), log_level=4)
    got = []
    c.on_c2d(lambda body, props: got.append(body))
    c.connect()
    real = inbound.dispatch
    short = [True]

    def dispatch(client, topic, msg):
        if short and topic.startswith(b"devices/"):
            short.pop()
            raise MemoryError("memory allocation failed, allocating 336 bytes")
        return real(client, topic, msg)

    monkeypatch.setattr(inbound, "dispatch", dispatch)
    hub.send_c2d(device.name, "kept", {"k": "v"})
    poll_until(c, lambda: not short)
    c.poll()
    assert got == [] and c.is_connected() and c.connects == 1
    assert any("heap short" in line for line in logs)
    c.disconnect()
    c.connect()
    poll_until(c, lambda: got)
    assert got == [b"kept"]
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        c.poll()
        time.sleep(0.01)
    assert got == [b"kept"]  # acknowledged this time: not sent a third time


def test_direct_methods(hub, device):
    c = device()

    def boom(payload):
        raise ValueError("nope")

    c.on_method("add", lambda p: (200, {"sum": p["a"] + p["b"]}))
    c.on_method("boom", boom)
    c.connect()
    results = {}

    def invoke(name, payload):
        results[name] = hub.invoke_method(device.name, name, payload, timeout=10)

    threads = [threading.Thread(target=invoke, args=a) for a in (("add", {"a": 1, "b": 2}), ("boom", None), ("missing", None))]
    for t in threads:
        t.start()
    poll_until(c, lambda: len(results) == 3 or not any(t.is_alive() for t in threads))
    for t in threads:
        t.join(10)
    assert results["add"]["status"] == 200 and results["add"]["payload"] == {"sum": 3}
    assert results["boom"]["status"] == 500 and results["boom"]["payload"] == {"error": "nope"}
    assert results["missing"]["status"] == 404


def test_one_handler_answers_every_method_without_its_own(hub, device):
    """on_method(None, cb): cb(name, payload) answers what no named handler does (the firmware
    keeps one function for all its methods); a named handler still comes first."""
    c = device()
    c.on_method("add", lambda p: (200, {"sum": p["a"] + p["b"]}))
    c.on_method(None, lambda name, p: (200, {"name": name, "got": p}) if name != "nope" else (404, {"no": name}))
    c.connect()
    results = {}

    def invoke(name, payload):
        results[name] = hub.invoke_method(device.name, name, payload, timeout=10)

    threads = [threading.Thread(target=invoke, args=a) for a in (("add", {"a": 1, "b": 2}), ("other", [1]), ("nope", None))]
    for t in threads:
        t.start()
    poll_until(c, lambda: len(results) == 3 or not any(t.is_alive() for t in threads))
    for t in threads:
        t.join(10)
    assert (results["add"]["status"], results["add"]["payload"]) == (200, {"sum": 3})
    assert (results["other"]["status"], results["other"]["payload"]) == (200, {"name": "other", "got": [1]})
    assert (results["nope"]["status"], results["nope"]["payload"]) == (404, {"no": "nope"})


def test_twin_desired_and_reported(hub, device):
    c = device()
    seen = []
    c.on_desired(lambda d, v, full: seen.append((dict(d), v, full)))
    hub.update_twin(device.name, {"properties": {"desired": {"rate": 5}}})
    c.connect()
    poll_until(c, lambda: seen)
    assert seen[0][0]["rate"] == 5 and seen[0][2] is True
    hub.update_twin(device.name, {"properties": {"desired": {"rate": 7}}})
    poll_until(c, lambda: len(seen) == 2)
    assert seen[1][0]["rate"] == 7 and seen[1][2] is False and seen[1][1] > seen[0][1]
    answers = []
    c.patch_reported({"fw": "1.0", "stats": c.stats()}, lambda status, version: answers.append(status))
    poll_until(c, lambda: answers)
    assert answers == [204]
    assert hub.get_twin(device.name)["properties"]["reported"]["fw"] == "1.0"
    assert c.get_twin()["desired"]["rate"] == 7


def test_outage_reconnect_resync_and_queue(hub, device):
    c = device(min_backoff_ms=100, max_backoff_ms=500, jitter_ms=50)
    seen = []
    c.on_desired(lambda d, v, full: seen.append((dict(d), v, full)))
    c.connect()
    poll_until(c, lambda: seen)
    session, buffer = c._mqtt, c._mqtt._buf
    hub.kill()
    poll_until(c, lambda: c.state != CONNECTED)
    c.send_telemetry(b"while-down")
    assert c.stats()["queued"] == 1
    hub.start()
    hub.update_twin(device.name, {"properties": {"desired": {"mode": "eco"}}})
    poll_until(c, lambda: c.state == CONNECTED and len(seen) >= 2, timeout=20)
    assert seen[-1][0]["mode"] == "eco" and seen[-1][2] is True
    # The session's one MQTT client and its buffers, taken when it was built, serve the new
    # connection too: a reconnect needs no fresh blocks of a fragmented heap.
    assert c._mqtt is session and c._mqtt._buf is buffer
    poll_until(c, lambda: c.stats()["queued"] == 0 and c.stats()["inflight"] == 0)
    bodies = [m["body"] for m in hub.wait_telemetry(device.name, 1)]
    assert "while-down" in bodies


def test_blocks_reserved_at_boot_are_the_sessions_buffer_and_tls_context(hub, device):
    from iothub.session import reserve

    reserved = reserve(1536)
    c = device(reserved=reserved, bufsize=4096)
    got = []
    c.on_c2d(lambda body, props: got.append(body))
    c.connect()
    # The CA went into the context taken at boot, and the receive buffer is the one set aside
    # (its length, not bufsize, is the largest packet handled whole).
    assert c._ssl is reserved[1] and c._mqtt._buf is reserved[0] and len(c._mqtt._buf) == 1536
    assert c.send_telemetry(b"over the reserved blocks")
    hub.send_c2d(device.name, "x" * 1000)
    poll_until(c, lambda: got and c.stats()["inflight"] == 0)
    assert got == [b"x" * 1000]
    assert [m["body"] for m in hub.wait_telemetry(device.name, 1)] == ["over the reserved blocks"]


def test_telemetry_properties_a_topic_built_once_for_a_tuple_and_each_time_for_a_dict(hub, device):
    c = device()
    c.connect()
    fixed = (("$.ct", "application/json"), ("kind", "a"))
    changing = {"kind": "b"}
    assert c.send_telemetry(b"1", fixed) and c.send_telemetry(b"2", fixed)
    assert c.send_telemetry(b"3", changing)
    changing["kind"] = "c"  # the same dict, changed: its topic must be built again
    assert c.send_telemetry(b"4", changing)
    poll_until(c, lambda: c.stats()["inflight"] == 0)
    kinds = {m["body"]: m["properties"]["kind"] for m in hub.wait_telemetry(device.name, 4)}
    assert kinds == {"1": "a", "2": "a", "3": "b", "4": "c"}


def test_can_send_now_says_whether_telemetry_would_go_out_at_once(hub, device):
    c = device(max_inflight=1)
    assert not c.can_send_now()  # not connected: it would be queued
    c.connect()
    assert c.can_send_now()
    assert c.send_telemetry(b"first")
    assert not c.can_send_now() and not c.send_telemetry(b"second")  # the window of 1 is full
    poll_until(c, lambda: c.can_send_now())
    assert [m["body"] for m in hub.wait_telemetry(device.name, 2)] == ["first", "second"]


def test_file_upload_into_blob_storage(hub, device, tmp_path):
    c = device()
    data = os.urandom(50000)
    path = tmp_path / "log.bin"
    path.write_bytes(data)
    progress = []
    result = c.upload_file(str(path), "log.bin", progress=lambda s, t: progress.append(s), chunk_size=8192)
    assert result["isSuccess"], result
    assert progress[-1] == 50000 and len(progress) == 7
    assert hashlib.sha256(hub.read_blob(device.name + "/log.bin")).digest() == hashlib.sha256(data).digest()
    (note,) = hub.wait_upload_notifications(device.name, 1)
    assert note["isSuccess"] is True and note["correlationId"] == result["correlationId"]


def test_an_upload_borrows_the_idle_mqtt_buffer_and_the_session_reads_on_after_it(hub, device, tmp_path):
    c = device(bufsize=2048)
    got = []
    c.on_c2d(lambda body, props: got.append(body))
    c.connect()
    data = os.urandom(20000)
    path = tmp_path / "log.bin"
    path.write_bytes(data)
    seen = []

    def progress(sent, total):
        # Mid-upload: the buffer is lent and a poll reads nothing into it, while a C2D message
        # sent now waits in the socket.
        if not seen:
            hub.send_c2d(device.name, "during the upload")
            time.sleep(0.3)
        seen.append(c._mqtt._lent)
        c.poll()

    result = c.upload_file(str(path), "lent.bin", progress=progress, chunk_size=4096)
    assert result["isSuccess"], result
    assert seen and all(seen) and not c._mqtt._lent and got == []
    assert hub.read_blob(device.name + "/lent.bin") == data
    poll_until(c, lambda: got)
    assert got == [b"during the upload"] and c.is_connected()


def test_a_hub_certificate_from_another_ca_is_refused(hub, device, pki):
    from iothub.errors import TLSError

    c = device(ca=pki["other-ca.der"].read_bytes())
    with pytest.raises(TLSError, match="not verified"):  # the TLS handshake: certificate verify failed
        c.connect()
    assert c.state == WAITING  # retried with backoff, as a network failure is
    assert hub.telemetry(device.name) == []


def test_a_token_from_an_unset_clock_gets_connack_5_and_auth_error(hub, device):
    from iothub.clock import SystemClock
    from iothub.errors import AuthError

    class UnsetRTC(SystemClock):
        def time(self):
            return 946684800  # 2000-01-01: the RTC was never set, the token expired long ago

    c = device(clock=UnsetRTC())
    with pytest.raises(AuthError) as refused:
        c.connect()
    assert refused.value.code == 5


def test_a_silent_server_times_out_instead_of_hanging():
    import socket

    from iothub.mqtt import MQTTClient

    net.use(lib_mpnet.SOCKET, lib_mpnet.SSL)
    server = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) but never answers
    try:
        c = MQTTClient("d", "127.0.0.1", server.getsockname()[1], timeout=0.3)
        start = time.monotonic()
        with pytest.raises(OSError):
            c.connect()
        assert time.monotonic() - start < 5
    finally:
        server.close()
        net.use()


def test_the_model_id_the_agent_announces_lands_in_the_twin(hub, device):
    c = device(model_id="dtmi:com:example:SensorNode;2")
    c.connect()
    assert hub.get_twin(device.name)["modelId"] == "dtmi:com:example:SensorNode;2"
