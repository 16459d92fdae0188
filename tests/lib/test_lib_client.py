"""Session logic of IoTHubClient with a scripted fake transport and a fake clock (no sleeps)."""

import json

import pytest

import lib_vectors
from lib_fakes import FakeClock, FakeHub
from iothub import sas, topics
from iothub.client import CONNECTED, FAILED, IDLE, RENEWING, WAITING, IoTHubClient
from iothub.errors import AuthError, NotConnected, TimeoutError_
from iothub.mqtt import MQTTException

CS = "HostName=hub.azure-devices.net;DeviceId=dev1;SharedAccessKey=" + lib_vectors.KEY


@pytest.fixture
def env():
    clock = FakeClock(unix=1700000000)
    hub = FakeHub(clock)
    logs = []

    def make(**kw):
        kw.setdefault("jitter", lambda limit: 250)
        kw.setdefault("transport", hub.factory)
        return IoTHubClient(CS, clock=clock, log=lambda lvl, text: logs.append(text), log_level=4, **kw)

    return clock, hub, make, logs


def test_connect_credentials_and_subscriptions(env):
    clock, hub, make, _ = env
    c = make(keepalive=120, token_ttl=3600)
    c.connect()
    a = hub.conn.args
    assert a["client_id"] == "dev1"
    assert (a["server"], a["port"], a["keepalive"]) == ("hub.azure-devices.net", 8883, 120)
    assert a["user"] == "hub.azure-devices.net/dev1/?api-version=2021-04-12"
    assert a["password"] == sas.token("hub.azure-devices.net/devices/dev1", lib_vectors.KEY, 1700003600)
    assert hub.conn.clean is False
    assert hub.conn.subs == [
        ("devices/dev1/messages/devicebound/#", 1),
        ("$iothub/methods/POST/#", 0),
        ("$iothub/twin/res/#", 0),
        ("$iothub/twin/PATCH/properties/desired/#", 0),
    ]
    assert c.state == CONNECTED and c.token_expiry() == 1700003600


def test_the_topics_session_and_client_spell_out_are_the_topics_module_s(env):
    """session and client write their subscriptions and twin request topics out rather than
    load iothub.topics on a board (at a connect, and for every reported patch): they must stay
    what the topics module builds."""
    clock, hub, make, _ = env
    c = make()
    c.on_desired(lambda d, v, full: None)
    c.connect()
    assert hub.conn.subs == [(topics.c2d_sub("dev1"), 1), (topics.METHODS_SUB, 0), (topics.TWIN_RES_SUB, 0),
                             (topics.TWIN_DESIRED_SUB, 0)]
    c.patch_reported({"a": 1})
    (get, _), (patch, _) = hub.published_on("$iothub/twin/")
    assert get == topics.twin_get_topic(get.rsplit("=", 1)[1])
    assert patch == topics.twin_patch_topic(patch.rsplit("=", 1)[1])


def test_module_identity_and_gateway():
    clock = FakeClock()
    hub = FakeHub(clock)
    cs = "HostName=h.net;DeviceId=d;ModuleId=m;GatewayHostName=127.0.0.2:18883;SharedAccessKey=" + lib_vectors.KEY
    c = IoTHubClient(cs, transport=hub.factory, clock=clock, model_id="dtmi:x:y;1", port=8884)
    c.connect()
    a = hub.conn.args
    # the gateway's port is its HTTPS port (as in azure-iot-device): MQTT uses `port`
    assert a["client_id"] == "d/m" and (a["server"], a["port"]) == ("127.0.0.2", 8884)
    assert a["user"] == "h.net/d/m/?api-version=2021-04-12&model-id=dtmi%3Ax%3Ay%3B1"
    assert "sr=h.net%2Fdevices%2Fd%2Fmodules%2Fm&" in a["password"]
    assert ("devices/d/messages/devicebound/#", 1) not in hub.conn.subs


def test_telemetry_with_application_and_system_properties(env):
    clock, hub, make, _ = env
    c = make()
    c.connect()
    assert c.send_telemetry(b'{"t":21.5}', [("alert", "no"), ("$.ct", "application/json"), ("$.ce", "utf-8"), ("$.mid", "m1"), ("$.cid", "c1")])
    assert hub.published[-1] == (
        "devices/dev1/messages/events/alert=no&%24.ct=application%2Fjson&%24.ce=utf-8&%24.mid=m1&%24.cid=c1",
        b'{"t":21.5}',
        1,
    )
    assert c.send_telemetry({"n": 1}) and hub.published[-1][1] == b'{"n": 1}'


def test_c2d_callback_gets_body_and_parsed_properties(env):
    clock, hub, make, _ = env
    c = make()
    got = []
    c.on_c2d(lambda body, props: got.append((body, props)))
    c.connect()
    hub.deliver("devices/dev1/messages/devicebound/%24.mid=7&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&color=red%20blue", b"hello")
    c.poll()
    assert got == [(b"hello", {"$.mid": "7", "$.to": "/devices/dev1/messages/devicebound", "color": "red blue"})]


def test_method_dispatch_200_404_500_and_bad_json(env):
    clock, hub, make, _ = env
    c = make()

    def fail(payload):
        raise RuntimeError("disk on fire")

    c.on_method("echo", lambda p: (200, {"you said": p}))
    c.on_method("fail", fail)
    c.connect()
    hub.deliver("$iothub/methods/POST/echo/?$rid=1", b'{"x": 1}')
    hub.deliver("$iothub/methods/POST/nope/?$rid=2", b"null")
    hub.deliver("$iothub/methods/POST/fail/?$rid=3", b"")
    hub.deliver("$iothub/methods/POST/echo/?$rid=4", b"{not json")
    c.poll()
    res = [(t, json.loads(m)) for t, m in hub.published_on("$iothub/methods/res/")]
    assert res == [
        ("$iothub/methods/res/200/?$rid=1", {"you said": {"x": 1}}),
        ("$iothub/methods/res/404/?$rid=2", {"message": "unknown method: nope"}),
        ("$iothub/methods/res/500/?$rid=3", {"error": "disk on fire"}),
        ("$iothub/methods/res/400/?$rid=4", {"message": "payload is not JSON"}),
    ]


def synced_at_version_5(make, hub):
    """A client connected with a desired callback, the hub's twin (rate 5, $version 5) taken in;
    returns it and the list of what the callback heard."""
    c = make()
    seen = []
    c.on_desired(lambda d, v, full: seen.append((dict(d), v, full)))
    hub.twin = {"desired": {"rate": 5, "$version": 5}, "reported": {"$version": 1}}
    c.connect()
    assert hub.published_on("$iothub/twin/GET/") == [("$iothub/twin/GET/?$rid=1", b"")]
    c.poll()
    assert seen == [({"rate": 5}, 5, True)]
    return c, seen


def test_twin_versions_stale_patches_ignored(env):
    clock, hub, make, _ = env
    c, seen = synced_at_version_5(make, hub)
    hub.deliver("$iothub/twin/PATCH/properties/desired/?$version=4", b'{"rate": 1, "$version": 4}')
    hub.deliver("$iothub/twin/PATCH/properties/desired/?$version=5", b'{"rate": 2, "$version": 5}')
    hub.deliver("$iothub/twin/PATCH/properties/desired/?$version=6", b'{"rate": null, "mode": "eco", "$version": 6}')
    c.poll()
    assert seen[1:] == [({"rate": None, "mode": "eco"}, 6, False)]
    assert c.desired() == {"mode": "eco"} and c.twin_version() == 6


def test_a_desired_patch_dropped_for_want_of_heap_comes_back_with_the_twin(env, monkeypatch):
    """MemoryError while a message is taken in (a fragmented board heap: no block for its
    parse) drops that message, but a desired patch must not stay lost: the next poll fetches
    the whole twin and applies it if newer. poll() itself raises nothing."""
    from iothub import inbound

    clock, hub, make, logs = env
    c, seen = synced_at_version_5(make, hub)
    gets = len(hub.published_on("$iothub/twin/GET/"))
    real = inbound.dispatch
    short = [True]

    def dispatch(client, topic, msg):  # the allocation failure, which nothing here can make for real
        if short and topic.startswith(b"$iothub/twin/PATCH/"):
            short.pop()
            raise MemoryError("memory allocation failed, allocating 368 bytes")
        return real(client, topic, msg)

    monkeypatch.setattr(inbound, "dispatch", dispatch)
    hub.twin = {"desired": {"rate": 9, "$version": 6}, "reported": {"$version": 1}}
    hub.deliver("$iothub/twin/PATCH/properties/desired/?$version=6", b'{"rate": 9, "$version": 6}')
    c.poll()  # the patch is dropped; the twin GET follows at once, in the same poll
    assert not short
    c.poll()
    assert any("heap short" in line for line in logs)
    assert len(hub.published_on("$iothub/twin/GET/")) == gets + 1
    assert seen[1:] == [({"rate": 9}, 6, True)]
    assert c.desired() == {"rate": 9} and c.twin_version() == 6
    c.poll()
    assert len(hub.published_on("$iothub/twin/GET/")) == gets + 1  # once, not at every poll


def test_get_twin_blocking_and_timeout(env):
    clock, hub, make, _ = env
    c = make(request_timeout_ms=2000)
    c.connect()
    hub.twin = {"desired": {"$version": 2}, "reported": {"$version": 1}}
    assert c.get_twin()["desired"]["$version"] == 2
    hub.twin = None  # the hub stays silent
    start = clock.ticks
    with pytest.raises(TimeoutError_):
        c.get_twin()
    assert 2000 <= clock.ticks - start <= 2100


def test_get_twin_async_timeout_calls_back_with_status_0(env):
    clock, hub, make, _ = env
    c = make(request_timeout_ms=1000)
    c.connect()
    got = []
    c.get_twin(lambda twin, status: got.append((twin, status)))
    clock.advance(999)
    c.poll()
    assert got == []
    clock.advance(1)
    c.poll()
    assert got == [(None, 0)]


def test_patch_reported_correlates_rid_and_merges_offline_patches(env):
    clock, hub, make, _ = env
    c = make()
    c.patch_reported({"a": 1, "b": {"c": 1}})
    c.patch_reported({"b": {"d": 2}, "a": None})
    assert hub.conns == []
    c.connect()
    (topic, body), = hub.published_on("$iothub/twin/PATCH/properties/reported/")
    assert json.loads(body) == {"a": None, "b": {"c": 1, "d": 2}}
    answers = []
    rid = c.patch_reported({"fw": "1.2"}, lambda status, version: answers.append((status, version)))
    assert hub.published[-1][0] == "$iothub/twin/PATCH/properties/reported/?$rid=" + rid
    c.poll()
    assert answers == [(204, 3)]


def test_sas_renewal_reconnects_with_a_fresh_token_before_expiry(env):
    clock, hub, make, _ = env
    c = make(token_ttl=3600, renew_margin=300, keepalive=1177)
    c.connect()
    first = hub.conn.args["password"]
    clock.advance(3299 * 1000)
    c.poll()
    assert len(hub.conns) == 1
    clock.advance(1000)  # 3300 s: within the margin
    c.poll()
    assert len(hub.conns) == 2 and hub.disconnects == 1 and c.state == CONNECTED
    second = hub.conn.args["password"]
    assert second != first and second.endswith("&se=%d" % (1700000000 + 3300 + 3600))
    assert c.token_expiry() == 1700000000 + 3300 + 3600


def test_renewal_lets_telemetry_in_flight_through_before_reconnecting(env):
    clock, hub, make, _ = env
    c = make(token_ttl=3600, renew_margin=300, keepalive=1177)
    changes = []
    c.on_connection(lambda up, reason: changes.append((up, reason)))
    c.connect()
    hub.auto_ack = False
    assert c.send_telemetry(b"in flight") is True
    clock.advance(3300 * 1000)
    c.poll()
    # Renewal due with a PUBACK outstanding: still connected, nothing new published.
    assert c.state == RENEWING and c.is_connected() and not c.can_send_now()
    assert c.send_telemetry(b"held") is False and len(hub.conns) == 1
    hub.conn.acks.append(1)  # the PUBACK comes in
    hub.auto_ack = True
    c.poll()
    assert c.state == CONNECTED and len(hub.conns) == 2
    assert [m for t, m, q in hub.published] == [b"in flight", b"held"]  # no duplicate
    assert changes == [(True, "connected")]  # a renewal is not a disconnection


def test_renewal_waits_for_acknowledgements_at_most_half_the_margin(env):
    clock, hub, make, _ = env
    c = make(token_ttl=3600, renew_margin=300, keepalive=1177)
    c.connect()
    hub.auto_ack = False
    c.send_telemetry(b"never acknowledged")
    clock.advance(3300 * 1000)
    c.poll()
    clock.advance(149 * 1000)
    c.poll()
    assert c.state == RENEWING and len(hub.conns) == 1
    clock.advance(1000)  # 150 s left: the token must not run out waiting
    c.poll()
    assert c.state == CONNECTED and len(hub.conns) == 2
    assert [m for t, m, q in hub.published] == [b"never acknowledged"] * 2  # re-sent, not lost


def test_session_states_follow_the_transition_table(env):
    clock, hub, make, _ = env
    c = make(token_ttl=3600, renew_margin=300, keepalive=1177)
    seen = [c.state]

    def step():
        if c.state != seen[-1]:
            seen.append(c.state)

    c.connect()
    step()
    clock.advance(3300 * 1000)  # renewal: RENEWING, then at once CONNECTED (nothing in flight)
    c.poll()
    step()
    hub.drop = True
    c.poll()
    step()
    clock.advance(1250)
    c.poll()
    step()
    hub.fail = [MQTTException(5)]
    with pytest.raises(AuthError):
        c.connect()
    step()
    c.connect()
    step()
    c.disconnect()
    step()
    assert seen == [IDLE, CONNECTED, WAITING, CONNECTED, FAILED, CONNECTED, IDLE]
    # Losing a link that is not up is no transition: ignored, and said in the log.
    logs = []
    c._log_fn, c._log_level = lambda level, text: logs.append(text), 4
    c._lost(OSError(104))
    assert c.state == IDLE and logs[-1] == "session event 3 ignored in state 0"


def test_backoff_delays_with_jitter_and_elapsed_time(env):
    clock, hub, make, _ = env
    c = make(min_backoff_ms=1000, max_backoff_ms=10000, jitter_ms=5000)
    hub.connect_cost_ms = 100  # each attempt takes 100 ms, subtracted from the next delay
    hub.fail = [OSError(113)] * 6
    with pytest.raises(OSError):
        c.connect()
    waits = []
    while len(hub.conns) < 7:
        before = len(hub.conns)
        start = clock.ticks
        while len(hub.conns) == before:
            clock.advance(10)
            c.poll()
        waits.append(clock.ticks - start)
    # min(1000 * 2**n, 10000) + 250 (jitter) - 100 (attempt duration), then 100 ms of connect
    expected = [1150, 2150, 4150, 8150, 10150, 10150]
    assert [w - 100 for w in waits] == [pytest.approx(e, abs=10) for e in expected]
    assert c.state == CONNECTED


def test_connack_5_is_not_retried_until_connect_is_called(env):
    clock, hub, make, _ = env
    c = make()
    hub.fail = [MQTTException(5)]
    with pytest.raises(AuthError) as info:
        c.connect()
    assert info.value.code == 5 and c.state == FAILED
    clock.advance(10**6)
    c.poll()
    assert len(hub.conns) == 1
    c.connect()  # the application fixed the clock, say: a new token is built
    assert c.state == CONNECTED and hub.conns[1].args["password"] != hub.conns[0].args["password"]


def test_connack_3_and_network_errors_are_retried(env):
    clock, hub, make, _ = env
    c = make()
    hub.fail = [MQTTException(3)]
    with pytest.raises(MQTTException):
        c.connect()
    assert c.state == WAITING
    clock.advance(1250)
    c.poll()
    assert c.state == CONNECTED


def test_reconnect_resubscribes_and_resyncs_the_twin(env):
    clock, hub, make, _ = env
    c = make()
    seen = []
    c.on_desired(lambda d, v, full: seen.append((dict(d), v, full)))
    hub.twin = {"desired": {"a": 1, "$version": 3}, "reported": {}}
    c.connect()
    c.poll()
    hub.drop = True
    c.poll()
    assert c.state == WAITING
    hub.twin = {"desired": {"a": 1, "$version": 3}, "reported": {}}  # unchanged while away
    clock.advance(1250)
    c.poll()
    assert c.state == CONNECTED and len(hub.conns) == 2
    assert hub.conns[1].subs == hub.conns[0].subs
    c.poll()
    assert seen == [({"a": 1}, 3, True)]  # same version: not applied twice
    hub.drop = True
    c.poll()
    hub.twin = {"desired": {"a": 2, "$version": 4}, "reported": {}}  # changed while away
    clock.advance(1250)
    c.poll()
    c.poll()
    assert seen[-1] == ({"a": 2}, 4, True)
    assert len(hub.published_on("$iothub/twin/GET/")) == 3


def test_offline_queue_drops_oldest_and_counts(env):
    clock, hub, make, _ = env
    c = make(queue_len=3)
    for i in range(5):
        assert c.send_telemetry(b"m%d" % i) is False
    assert c.stats()["dropped"] == 2 and c.stats()["queued"] == 3
    c.connect()
    assert [m for t, m, q in hub.published] == [b"m2", b"m3", b"m4"]
    assert c.stats()["queued"] == 0


def test_unacknowledged_telemetry_is_resent_after_reconnect(env):
    clock, hub, make, _ = env
    c = make(max_inflight=2)
    c.connect()
    hub.auto_ack = False
    c.send_telemetry(b"a")
    c.send_telemetry(b"b")
    assert c.send_telemetry(b"c") is False  # window full: queued
    hub.drop = True
    c.poll()
    hub.auto_ack = True
    clock.advance(1250)
    c.poll()
    assert [m for t, m, q in hub.published] == [b"a", b"b", b"a", b"b"]  # window full again
    c.poll()  # their PUBACKs free the window: the queued one follows
    assert [m for t, m, q in hub.published] == [b"a", b"b", b"a", b"b", b"c"]
    c.poll()
    assert c.stats()["inflight"] == 0 and c.stats()["queued"] == 0


def test_publish_failure_requeues_and_reconnects(env):
    clock, hub, make, _ = env
    c = make()
    c.connect()
    hub.break_on_publish = True
    assert c.send_telemetry(b"x") is False
    assert c.state == WAITING and c.stats()["queued"] == 1
    hub.break_on_publish = False
    clock.advance(1250)
    c.poll()
    assert hub.published[-1][1] == b"x"


def test_keepalive_pings_and_dead_link_detection(env):
    clock, hub, make, _ = env
    c = make(keepalive=60)
    c.connect()
    clock.advance(29999)
    c.poll()
    assert hub.pings == 0
    clock.advance(1)
    c.poll()
    assert hub.pings == 1
    hub.answer_pings = False
    clock.advance(30000)
    c.poll()
    clock.advance(30000)
    c.poll()  # two pings unanswered: the link is dead
    assert c.state == WAITING and hub.pings == 2


def test_malformed_inbound_messages_are_dropped_not_fatal(env):
    clock, hub, make, logs = env
    c = make()
    c.on_desired(lambda d, v, full: None)
    c.connect()
    hub.deliver("$iothub/twin/res/200/?nothing=1", b"{}")
    hub.deliver("$iothub/twin/PATCH/properties/desired/?$version=x", b"{}")
    hub.deliver("$iothub/twin/PATCH/properties/desired/?$version=9", b"[1, 2]")
    hub.deliver("$iothub/methods/POST/m", b"{}")
    hub.deliver("somewhere/else", b"")
    c.poll()
    assert c.state == CONNECTED
    assert sum("dropped" in line for line in logs) == 5


def test_not_connected_errors(env):
    clock, hub, make, _ = env
    c = make()
    with pytest.raises(NotConnected):
        c.get_twin()


def test_secrets_never_in_logs_or_errors(env):
    clock, hub, make, logs = env
    c = make()
    hub.fail = [OSError(113), MQTTException(5)]
    errors = []
    for _ in range(2):
        try:
            c.connect()
        except Exception as e:
            errors.append(repr(e) + str(e))
    c.connect()
    token = hub.conn.args["password"]
    sig = token.split("sig=")[1].split("&")[0]
    text = "\n".join(logs + errors + [repr(c), str(c.stats())])
    for secret in (lib_vectors.KEY, lib_vectors.KEY[:16], sig, sas.unquote(sig)):
        assert secret not in text


def test_refused_subscription_is_not_an_auth_error(env):
    clock, hub, make, logs = env
    c = make()

    def refuse(topic, qos=0):
        raise MQTTException(0x80, "subscription refused")

    orig = hub.factory

    def factory(*a):
        conn = orig(*a)
        conn.subscribe = refuse
        return conn

    c._transport = factory
    with pytest.raises(Exception) as info:
        c.connect()
    assert not isinstance(info.value, AuthError)
    assert c.state == WAITING and any("refused a subscription" in line for line in logs)


def test_transport_assertion_errors_reconnect_instead_of_crashing(env):
    clock, hub, make, _ = env
    c = make()
    c.connect()

    def broken():
        raise AssertionError()  # what umqtt.simple raises on a malformed packet

    hub.conn.check_msg = broken
    c.poll()
    assert c.state == WAITING
    clock.advance(1250)
    c.poll()
    assert c.state == CONNECTED and len(hub.conns) == 2


def test_connect_twice_replaces_the_connection(env):
    clock, hub, make, _ = env
    c = make()
    c.connect()
    c.connect()
    assert len(hub.conns) == 2 and not hub.conns[0].open and hub.conns[1].open


class UmqttLike:
    """Only umqtt.simple's methods: publish(qos=1) waits for its PUBACK and returns None."""

    def __init__(self, conn):
        self._c = conn

    def set_callback(self, f):
        self._c.set_callback(f)

    def connect(self, clean_session=True):
        return self._c.connect(clean_session)

    def subscribe(self, topic, qos=0):
        self._c.subscribe(topic, qos)

    def publish(self, topic, msg, retain=False, qos=0):
        self._c.publish(topic, msg, retain, qos)
        self._c.acks.clear()  # acknowledged before returning, as umqtt.simple does
        return None

    def check_msg(self):
        self._c.check_msg()

    def ping(self):
        self._c.ping()

    def disconnect(self):
        self._c.disconnect()


def test_session_runs_on_a_umqtt_simple_style_transport(env):
    clock, hub, make, _ = env
    c = make(transport=lambda *a: UmqttLike(hub.factory(*a)))
    c.on_method("m", lambda p: (200, None))
    c.connect()
    for i in range(6):  # more than max_inflight: nothing is left waiting for a PUBACK callback
        assert c.send_telemetry(b"%d" % i)
    hub.deliver("$iothub/methods/POST/m/?$rid=1", b"")
    c.poll()
    assert c.stats()["inflight"] == 0
    assert hub.published[-1][0] == "$iothub/methods/res/200/?$rid=1"


def test_the_state_table_in_the_library_readme_is_the_one_the_session_runs():
    from pathlib import Path

    from iothub import session

    readme = (Path(session.__file__).parent / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.strip().startswith("| ") and "|" in line]
    start = next(i for i, line in enumerate(rows) if "state \\ event" in line)
    names = {"-": 255, **{n: getattr(session, n) for n in ("IDLE", "CONNECTED", "WAITING", "FAILED", "RENEWING")}}
    table = []
    for line in rows[start + 1:start + 6]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert names[cells[0]] == len(table) // 6  # rows in state order
        table.extend(names[cell] for cell in cells[1:])
    assert bytes(table) == session.TRANSITIONS


def test_disconnect_from_inside_a_callback_ends_the_session_there(env):
    """An application that calls disconnect() in a C2D callback (run inside poll): the rest of
    that poll must not ping through the dropped link nor renew it back to life."""
    clock, hub, make, _ = env
    c = make(keepalive=60, token_ttl=3600, renew_margin=300)
    c.on_c2d(lambda body, props: c.disconnect())
    c.connect()
    clock.advance(3400 * 1000)  # a ping and the token's renewal are both due
    hub.deliver("devices/dev1/messages/devicebound/", b"stop")
    c.poll()
    assert c.state == IDLE and len(hub.conns) == 1 and hub.pings == 0
    c.poll()
    assert c.state == IDLE and len(hub.conns) == 1
