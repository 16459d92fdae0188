"""Pure layer: vectors (shared with the MicroPython VM run) plus CPython reference checks."""

import base64
import hashlib
import hmac
import traceback
import urllib.parse
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lib_pure_checks
import lib_vectors
from azure.iot.device.common.auth import connection_string as sdk_cs
from azure.iot.device.common.auth import sastoken as sdk_sastoken
from azure.iot.device.common.auth import signing_mechanism as sdk_signing
from iothub import connstr, pending, sas, topics
from iothub.errors import ConfigError, ProtocolError


@pytest.mark.parametrize("check", lib_pure_checks.ALL, ids=lambda f: f.__name__)
def test_vectors(check):
    check()


def test_rfc4231_vectors_agree_with_stdlib_hmac():
    # Guards the literals themselves.
    for key, data, want in lib_vectors.RFC4231:
        got = hmac.new(bytes.fromhex(key), bytes.fromhex(data), hashlib.sha256).hexdigest()
        assert got[: len(want)] == want


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_matches_stdlib(key, msg):
    assert sas.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


@given(st.text(max_size=50))
def test_quote_matches_urllib(text):
    assert sas.quote(text) == urllib.parse.quote(text, safe="")
    assert sas.unquote(sas.quote(text)) == text


def test_quote_vectors_match_urllib():
    for text, want in lib_vectors.QUOTE:
        assert urllib.parse.quote(text, safe="") == want


@pytest.mark.parametrize("bad", ["%", "%4", "%zz", "a%g1"])
def test_unquote_rejects_bad_escapes(bad):
    with pytest.raises(ValueError):
        sas.unquote(bad)


def _sdk_token(uri, key, expiry, key_name=None):
    signer = sdk_signing.SymmetricKeySigningMechanism(key)
    with mock.patch("time.time", return_value=expiry - 3600):
        return str(sdk_sastoken.RenewableSasToken(uri, signer, key_name=key_name, ttl=3600))


@pytest.mark.parametrize(
    "host,device,module,key_name",
    [
        ("hub.azure-devices.net", "dev1", None, None),
        ("hub.azure-devices.net", "dev with space", None, None),
        ("localhost:8443", "dev1", "mod/a", None),
        ("hub.azure-devices.net", "dev1", None, "iothubowner"),
    ],
)
@pytest.mark.parametrize("expiry", [1700000000, 2000000000])
def test_sas_token_equals_official_sdk(host, device, module, key_name, expiry):
    uri = sas.resource_uri(host, device, module)
    want = _sdk_token(uri, lib_vectors.KEY, expiry, key_name)
    assert sas.token(uri, lib_vectors.KEY, expiry, key_name) == want
    assert sas.token(uri, base64.b64decode(lib_vectors.KEY), expiry, key_name) == want


def test_sas_token_uses_unix_time_on_a_2000_epoch_port():
    # An ESP32 whose RTC reads 2023-11-14T22:13:20Z reports time.time() = 1700000000 - 946684800.
    port_now = 1700000000 - 946684800
    expiry = sas.unix_time(port_now, 2000) + 3600
    assert expiry == 1700003600
    uri = sas.resource_uri("h.net", "d")
    assert sas.token(uri, lib_vectors.KEY, expiry) == _sdk_token(uri, lib_vectors.KEY, 1700003600)


def test_connection_strings_agree_with_official_sdk_parser():
    for text, _ in lib_vectors.GOOD_CONNSTRS:
        ours = connstr.parse(text)
        theirs = sdk_cs.ConnectionString(text.strip().rstrip(";"))
        assert ours.host == theirs["HostName"]
        assert ours.device_id == theirs["DeviceId"]
        assert ours.key == theirs["SharedAccessKey"]


@pytest.mark.parametrize("text,fragment", lib_vectors.BAD_CONNSTRS)
def test_malformed_connection_string_never_shows_the_key(text, fragment):
    with pytest.raises(ConfigError) as info:
        connstr.parse(text)
    shown = str(info.value) + repr(info.value) + "".join(traceback.format_exception(info.value))
    assert fragment in str(info.value)
    assert lib_vectors.KEY not in shown and lib_vectors.KEY[:20] not in shown


_name = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@given(st.dictionaries(_name, st.text(st.characters(blacklist_categories=("Cs",)), max_size=20), max_size=5))
def test_property_bag_round_trip(props):
    assert topics.decode_bag(topics.encode_bag(props)) == props


def test_property_bag_system_properties_and_sdk_decoding():
    # The bag the official SDK would parse out of our topic: urllib.parse.parse_qsl-like.
    props = {"$.ct": "application/json", "$.ce": "utf-8", "$.mid": "id 1", "$.cid": "c&d", "x": "1=2"}
    topic = topics.telemetry_topic("dev1", props)
    bag = topic.split("/")[-1]
    assert dict(urllib.parse.parse_qsl(bag)) == props
    assert topics.decode_bag(bag) == props


def test_bag_with_bad_escape_raises():
    with pytest.raises(ProtocolError):
        topics.decode_bag("a=%ZZ")
    with pytest.raises(ProtocolError):
        topics.decode_bag("=1")


def test_pending_requests_track_rids_and_deadlines():
    p = pending.Pending(limit=2)
    a = p.add("get", "cbA", now=1000, timeout_ms=500)
    b = p.add("patch", "cbB", now=1100, timeout_ms=500)
    assert a != b
    with pytest.raises(ConfigError):
        p.add("get", None, 1200, 500)
    assert p.expired(1499) == []
    assert p.expired(1500) == [(a, "get", "cbA")]
    assert p.pop("nope") is None
    assert p.pop(b) == ("patch", "cbB")
    assert len(p) == 0


def test_pending_deadline_survives_tick_wraparound():
    period = 1 << 30

    def diff(x, y):
        d = (x - y) & (period - 1)
        return d - period if d >= period // 2 else d

    p = pending.Pending(diff=diff)
    rid = p.add("get", None, now=period - 100, timeout_ms=300)
    assert p.expired(150) == []  # 250 ms later, across the wrap
    assert [r for r, _, _ in p.expired(200)] == [rid]
