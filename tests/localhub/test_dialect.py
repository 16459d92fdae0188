"""The IoT Hub dialect both sides speak, round-tripped: what the device library builds, the hub
parses to the same values, and what the hub builds, the device library parses back.

Device side: lib/iothub (topics, sas, twin), the code that runs on a board. Hub side:
localhub.protocol. Property bags and subscription filters are one implementation (the hub uses
lib's); topics each side only builds or only parses, SAS and merge patch are checked here.
"""

from __future__ import annotations

import copy
import string

from hypothesis import given, settings
from hypothesis import strategies as st
from iothub import sas as device_sas
from iothub import topics as device_topics
from iothub import twin as device_twin
from localhub.protocol import auth, topics, twin

# Device ids: IoT Hub's charset (ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ ').
device_ids = st.text(string.ascii_letters + string.digits + "-.%_*?!(),:=@$'", min_size=1,
                     max_size=128)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
keys = texts.filter(bool)
bags = st.dictionaries(keys, st.none() | texts, max_size=6)  # None: a key alone
rids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)
statuses = st.integers(min_value=100, max_value=599)
versions = st.integers(min_value=1, max_value=2**31 - 1)
json_scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8)
json_docs = st.recursive(json_scalars, lambda inner: st.dictionaries(st.text(max_size=4), inner,
                                                                       max_size=4), max_leaves=12)
patches = st.dictionaries(st.text(max_size=4), json_docs, max_size=4)
targets = st.dictionaries(st.text(max_size=4), json_docs.filter(lambda v: v is not None), max_size=4)


@settings(max_examples=300, deadline=None)
@given(bags)
def test_property_bags_round_trip_both_ways(props: dict[str, str | None]) -> None:
    assert topics.decode_property_bag(device_topics.encode_bag(props)) == props
    assert device_topics.decode_bag(topics.encode_property_bag(props)) == props


@settings(max_examples=200, deadline=None)
@given(device_ids, bags)
def test_telemetry_the_device_builds_is_parsed_by_the_hub(device_id: str, props: dict[str, str | None]) -> None:
    parsed = topics.parse_telemetry(device_topics.telemetry_topic(device_id, props), device_id)
    assert parsed is not None and parsed.properties == props


@settings(max_examples=200, deadline=None)
@given(device_ids, bags)
def test_c2d_the_hub_builds_is_parsed_by_the_device(device_id: str, props: dict[str, str | None]) -> None:
    assert device_topics.parse_c2d(topics.c2d_topic(device_id, props), device_id) == props


@settings(max_examples=200, deadline=None)
@given(rids)
def test_twin_requests_the_device_builds_are_parsed_by_the_hub(rid: str) -> None:
    assert topics.parse_twin_request(device_topics.twin_get_topic(rid)) == topics.TwinRequest("GET", rid)
    assert topics.parse_twin_request(device_topics.twin_patch_topic(rid)) == \
        topics.TwinRequest("PATCH-reported", rid)


@settings(max_examples=200, deadline=None)
@given(statuses, rids, st.none() | versions)
def test_twin_responses_the_hub_builds_are_parsed_by_the_device(status: int, rid: str,
                                                                version: int | None) -> None:
    topic = topics.twin_response_topic(status, rid, version)
    assert device_topics.parse_twin_res(topic) == (status, rid, version)


@given(versions)
def test_desired_patches_the_hub_sends_carry_their_version_to_the_device(version: int) -> None:
    assert device_topics.parse_twin_desired(topics.desired_patch_topic(version)) == version


@settings(max_examples=200, deadline=None)
@given(texts.filter(bool), rids)
def test_method_requests_and_responses_round_trip(name: str, rid: str) -> None:
    assert device_topics.parse_method(topics.method_request_topic(name, rid)) == (name, rid)


@settings(max_examples=200, deadline=None)
@given(statuses, rids)
def test_method_responses_the_device_builds_are_parsed_by_the_hub(status: int, rid: str) -> None:
    assert topics.parse_method_response(device_topics.method_res_topic(status, rid)) == \
        topics.MethodResponse(status, rid)


@given(device_ids)
def test_every_filter_the_device_subscribes_is_one_the_hub_offers(device_id: str) -> None:
    filters = (device_topics.c2d_sub(device_id), device_topics.TWIN_RES_SUB,
               device_topics.TWIN_DESIRED_SUB, device_topics.METHODS_SUB)
    kinds = [topics.subscription_kind(f, device_id) for f in filters]
    assert kinds == [topics.SUB_C2D, topics.SUB_TWIN_RES, topics.SUB_DESIRED, topics.SUB_METHODS]


@settings(max_examples=100, deadline=None)
@given(device_ids, st.integers(min_value=2, max_value=2**31 - 1))
def test_a_sas_token_the_device_makes_is_one_the_hub_accepts(device_id: str, expiry: int) -> None:
    key = "c2VjcmV0LWtleS1mb3ItdGhlLXRlc3QtLTMyYnl0ZXM="
    host = "hub.local"
    token = device_sas.token(device_sas.resource_uri(host, device_id), key, expiry)
    parsed = auth.verify_device_token(token, device_id, [key], frozenset({host}), expiry - 1)
    assert parsed.expiry == expiry


@settings(max_examples=300, deadline=None)
@given(targets, patches)
def test_a_desired_patch_merges_the_same_on_the_device_and_on_the_hub(target, patch) -> None:
    on_device = device_twin.merge_patch(copy.deepcopy(target), copy.deepcopy(patch))
    on_hub = copy.deepcopy(target)
    twin.merge_patch(on_hub, copy.deepcopy(patch))
    assert on_hub == on_device
