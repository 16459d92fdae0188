"""Checks of the pure layer against lib_vectors.py, written for CPython AND MicroPython (no pytest,
no assert): each check raises ``Failure`` naming the vector that failed. test_lib_pure.py calls them
under pytest; test_lib_vm_pure.py replays them inside the MicroPython WebAssembly VM."""

import binascii

from iothub import blocks, connstr, retry, sas, topics
from iothub.errors import ConfigError, ProtocolError
from iothub.ring import Ring
from iothub.twin import apply, combine_patches, merge_patch

import lib_vectors


class Failure(Exception):
    pass


def _eq(got, want, what):
    if got != want:
        raise Failure("%s: got %r, want %r" % (what, got, want))


def check_hmac():
    for i, (key, data, want) in enumerate(lib_vectors.RFC4231):
        got = binascii.hexlify(sas.hmac_sha256(binascii.unhexlify(key.encode()), binascii.unhexlify(data.encode()))).decode()
        _eq(got[: len(want)], want, "RFC 4231 case %d" % (i + 1))


def check_quote():
    for text, want in lib_vectors.QUOTE:
        _eq(sas.quote(text), want, "quote(%r)" % text)
        _eq(sas.unquote(want), text, "unquote(%r)" % want)


def check_epochs():
    for year, offset in lib_vectors.EPOCHS:
        _eq(sas.epoch_offset(year), offset, "epoch %d" % year)
    # A port counting from 2000: time.time() == 0 is 2000-01-01T00:00:00Z.
    _eq(sas.unix_time(0, 2000), 946684800, "unix_time(0, 2000)")
    _eq(sas.unix_time(1700000000 - 946684800, 2000), 1700000000, "unix_time(ESP32 now)")


def check_connstr():
    for text, want in lib_vectors.GOOD_CONNSTRS:
        cs = connstr.parse(text)
        _eq((cs.host, cs.device_id, cs.module_id, cs.gateway, cs.key_name), want, "parse %r" % want[1])
        _eq(cs.key, lib_vectors.KEY, "key")
        if lib_vectors.KEY in repr(cs) or lib_vectors.KEY in str(cs):
            raise Failure("key in repr")
    for text, fragment in lib_vectors.BAD_CONNSTRS:
        try:
            connstr.parse(text)
        except ConfigError as e:
            msg = str(e) + repr(e)
            if fragment not in msg:
                raise Failure("message %r lacks %r" % (msg, fragment))
            if lib_vectors.KEY in msg or lib_vectors.KEY[:-3] in msg or "not*base64" in msg:
                raise Failure("key echoed in %r" % msg)
        else:
            raise Failure("accepted bad connection string expecting %r" % fragment)


def check_bags():
    for props, encoded in lib_vectors.BAGS:
        # Pairs keep their order on every port (MicroPython dicts may not).
        pairs = [(k, props[k]) for k in props]
        order = [k for k in props]
        got = topics.encode_bag(pairs)
        # Compare part by part in the dict's own iteration order.
        want_parts = dict((p.split("=")[0], p) for p in encoded.split("&")) if encoded else {}
        _eq(got, "&".join(want_parts[sas.quote(k)] for k in order), "encode_bag")
        _eq(topics.decode_bag(encoded), props, "decode_bag %r" % encoded)
        _eq(topics.decode_bag(topics.encode_bag(props)), props, "bag round trip")


def _expect(fn, arg, want, what):
    if want == "raise":
        try:
            got = fn(arg)
        except ProtocolError:
            return
        raise Failure("%s(%r) returned %r instead of raising" % (what, arg, got))
    _eq(fn(arg), want, "%s(%r)" % (what, arg))


def check_topics():
    _eq(
        topics.telemetry_topic("dev1", [("a", "1"), ("$.ct", "application/json")]),
        "devices/dev1/messages/events/a=1&%24.ct=application%2Fjson",
        "telemetry topic",
    )
    _eq(topics.telemetry_topic("dev1"), "devices/dev1/messages/events/", "bare telemetry topic")
    _eq(topics.telemetry_topic("d", None, "m"), "devices/d/modules/m/messages/events/", "module telemetry")
    _eq(topics.c2d_sub("dev1"), "devices/dev1/messages/devicebound/#", "c2d sub")
    _eq(topics.twin_get_topic("5"), "$iothub/twin/GET/?$rid=5", "twin get")
    _eq(topics.twin_patch_topic(6), "$iothub/twin/PATCH/properties/reported/?$rid=6", "twin patch")
    _eq(topics.method_res_topic(404, "9"), "$iothub/methods/res/404/?$rid=9", "method res")
    for topic, dev, want in lib_vectors.C2D:
        _eq(topics.parse_c2d(topic, dev), want, "parse_c2d %r" % topic)
    for topic, want in lib_vectors.TWIN_RES:
        _expect(topics.parse_twin_res, topic, want, "parse_twin_res")
    for topic, want in lib_vectors.DESIRED:
        _expect(topics.parse_twin_desired, topic, want, "parse_twin_desired")
    for topic, want in lib_vectors.METHODS:
        _expect(topics.parse_method, topic, want, "parse_method")


def check_retry():
    for attempt, jitter, lo, hi, elapsed, want in lib_vectors.DELAYS:
        _eq(retry.delay_ms(attempt, jitter, lo, hi, elapsed), want, "delay %d" % attempt)
    _eq([s for s in (200, 400, 403, 429, 500, 503) if retry.http_retryable(s)], [429, 500, 503], "http")
    _eq([c for c in range(6) if retry.connack_retryable(c)], [3], "connack")


def check_twin():
    t = [-1, {}]
    _eq(apply(t, 4, {"a": 1, "$version": 4}, True), {"a": 1}, "first full")
    _eq(apply(t, 4, {"a": 2}, False), None, "equal version is stale")
    _eq(apply(t, 3, {"a": 2}, False), None, "older is stale")
    _eq(t, [4, {"a": 1}], "stale left it alone")
    _eq(apply(t, 5, {"a": None, "b": {"c": 1}, "$version": 5}, False), {"a": None, "b": {"c": 1}}, "newer applies")
    _eq(t, [5, {"b": {"c": 1}}], "null deletes, nested added")
    _eq(apply(t, 5, {"x": 1, "$version": 5}, True), None, "full not newer")
    _eq(apply(t, None, {"x": 1}, True), None, "a GET without $version")
    _eq(merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}), {"a": {"c": 2, "d": 3}}, "merge")
    _eq(combine_patches({"a": 1, "b": {"c": 1}}, {"a": None, "b": {"d": 2}}), {"a": None, "b": {"c": 1, "d": 2}}, "combine")


def check_ring():
    r = Ring(3)
    for i in range(5):
        r.push(i)
    _eq((len(r), r.drops), (3, 2), "ring drops oldest")
    _eq(r.push_front("x"), False, "full push_front drops that item")
    _eq([r.pop(), r.pop()], [2, 3], "fifo")
    _eq(r.push_front("y"), True, "push_front")
    _eq([r.pop(), r.pop(), r.pop()], ["y", 4, None], "head first")
    _eq(r.drops, 3, "drops counted")


def check_blocks():
    for index, want in lib_vectors.BLOCK_IDS:
        _eq(blocks.block_id(index), want, "block id %d" % index)
    for count, want in ((2, lib_vectors.BLOCK_LIST_2), (0, lib_vectors.BLOCK_LIST_0)):
        for size in (64, 100, 4096):
            out = bytearray()
            blocks.write_block_list(out.extend, count, bytearray(size))
            _eq(bytes(out).decode(), want, "block list %d/%d" % (count, size))
            _eq(blocks.block_list_length(count), len(want), "block list length")
        out = bytearray()
        buf = bytearray(80)
        buf[:4] = b"HEAD"
        blocks.write_block_list(out.extend, count, buf, 4)
        _eq(bytes(out).decode(), "HEAD" + want, "block list behind a head")


def check_sas_token():
    # A pinned token (the same value the official SDK gives: see test_lib_pure.py).
    tok = sas.token(sas.resource_uri("hub.azure-devices.net", "dev1"), lib_vectors.KEY, 1700000000)
    want_sr = "sr=hub.azure-devices.net%2Fdevices%2Fdev1&"
    if not tok.startswith("SharedAccessSignature " + want_sr) or not tok.endswith("&se=1700000000"):
        raise Failure("token shape %r" % tok)


ALL = [
    check_hmac,
    check_quote,
    check_epochs,
    check_connstr,
    check_bags,
    check_topics,
    check_retry,
    check_twin,
    check_ring,
    check_blocks,
    check_sas_token,
]


def run_all():
    for check in ALL:
        check()
    return len(ALL)
