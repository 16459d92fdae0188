"""The query language, pure: tokenizer, parser (errors with positions), evaluator, paging, and the
validation of job requests. End-to-end use over HTTPS is in test_jobs_sdk.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from localhub import query
from localhub.protocol.errors import HubError
from localhub.query.lexer import tokenize
from localhub.services.jobs import parse_job_request, parse_time

TWINS: list[dict[str, Any]] = [
    {"deviceId": "pump-1", "status": "enabled", "lastActivityTime": "2026-01-02T00:00:00Z",
     "tags": {"building": 43, "floor": 3, "group": "a", "name": "Pump One"},
     "properties": {"desired": {"interval": 10},
                    "reported": {"connectivity": {"type": "cellular"}, "temp": 21.5,
                                 "fw": "1.2.0", "errors": [1, 2], "battery": None}}},
    {"deviceId": "pump-2", "status": "enabled",
     "tags": {"building": 43, "floor": 4, "group": "b"},
     "properties": {"desired": {}, "reported": {"connectivity": {"type": "wifi"}, "temp": 30,
                                                "fw": "1.3.0"}}},
    {"deviceId": "fan-1", "status": "disabled", "tags": {"building": "43"},
     "properties": {"desired": {}, "reported": {"temp": -5}}},
]


def ids(sql: str, docs: list[dict[str, Any]] = TWINS) -> list[str]:
    kind, rows = query.run(query.parse(sql), docs)
    return [r["deviceId"] for r in rows]


@pytest.mark.parametrize("where,expected", [
    ("tags.building = 43", ["pump-1", "pump-2"]),          # a number is not the string '43'
    ("tags.building = '43'", ["fan-1"]),
    ("tags.building IN [43, '43']", ["pump-1", "pump-2", "fan-1"]),
    ("tags.building NIN [43]", ["fan-1"]),
    ("tags.floor NOT IN [3]", ["pump-2"]),                  # undefined floor: not selected
    ("properties.reported.temp * 2 + 1 > 44", ["pump-2"]),
    ("properties.reported.temp % 2 = -1", ["fan-1"]),
    ("-properties.reported.temp > 0", ["fan-1"]),
    ("properties.reported.temp / 0 = 1 OR deviceId = 'fan-1'", ["fan-1"]),
    ("0x2B = tags.building", ["pump-1", "pump-2"]),
    ("tags.floor >= 3.5", ["pump-2"]),
    ("tags.floor > '3'", []),                              # no cross-type ordering
    ("NOT (tags.floor = 3)", ["pump-2"]),                  # NOT undefined stays undefined
    ("tags.floor = 3 OR tags.floor != 3", ["pump-1", "pump-2"]),
    ("tags.floor = 3 AND tags.nothing = 1 OR deviceId = 'fan-1'", ["fan-1"]),
    ("IS_DEFINED(properties.reported.battery)", ["pump-1"]),
    ("IS_NULL(properties.reported.battery)", ["pump-1"]),
    ("IS_ARRAY(properties.reported.errors) AND IS_OBJECT(properties.reported.connectivity)",
     ["pump-1"]),
    ("IS_PRIMITIVE(properties.reported.fw) AND IS_STRING(properties.reported.fw)",
     ["pump-1", "pump-2"]),
    ("IS_NUMBER(tags.building) AND NOT IS_BOOL(tags.building)", ["pump-1", "pump-2"]),
    ("STARTS_WITH(deviceId, 'pump') AND ENDSWITH(deviceId, '2')", ["pump-2"]),
    ("CONTAINS(LOWER(tags.name), 'one')", ["pump-1"]),
    ("UPPER(deviceId) = 'FAN-1'", ["fan-1"]),
    ("LENGTH(deviceId) = 5", ["fan-1"]),
    ("CONCAT(deviceId, '/', tags.group) = 'pump-2/b'", ["pump-2"]),
    ("SUBSTRING(properties.reported.fw, 2, 1) = '3'", ["pump-2"]),
    ("INDEX_OF(deviceId, '-') = 3", ["fan-1"]),
    ("AS_NUMBER('43') = tags.building", ["pump-1", "pump-2"]),
    ("ABS(properties.reported.temp) = 5 AND SIGN(properties.reported.temp) = -1", ["fan-1"]),
    ("FLOOR(properties.reported.temp) = 21 AND CEILING(properties.reported.temp) = 22",
     ["pump-1"]),
    ("POWER(2, tags.floor) = 16 AND SQRT(SQUARE(tags.floor)) = 4", ["pump-2"]),
    ("EXP(0) = 1 AND deviceId = 'fan-1'", ["fan-1"]),
    ("tags.[[group]] = 'a'", ["pump-1"]),
    ("tags.group = 'b'", ["pump-2"]),
    ("DeviceId = 'fan-1' AND LastActivityTime = undefined", []),
    ("devices.tags.floor = 4", ["pump-2"]),
    ("properties.reported.connectivity.type = \"wifi\"", ["pump-2"]),
    ("tags.name = 'Pump \\u004fne'", ["pump-1"]),
])
def test_where(where: str, expected: list[str]) -> None:
    assert ids(f"SELECT * FROM devices WHERE {where}") == expected


def test_select_forms() -> None:
    kind, rows = query.run(query.parse(
        "SELECT deviceId, properties.reported.temp AS t, LOWER(deviceId) FROM devices "
        "WHERE tags.building = 43"), TWINS)
    assert kind == "raw"
    assert rows == [{"deviceId": "pump-1", "t": 21.5, "$3": "pump-1"},
                    {"deviceId": "pump-2", "t": 30, "$3": "pump-2"}]
    assert ids("SELECT TOP 2 * FROM devices") == ["pump-1", "pump-2"]
    kind, rows = query.run(query.parse(
        "SELECT tags.building AS b, COUNT() AS n, SUM(properties.reported.temp) AS s, "
        "AVG(properties.reported.temp) AS a, MIN(properties.reported.temp) AS lo, "
        "MAX(properties.reported.fw) AS hi FROM devices GROUP BY tags.building"), TWINS)
    assert kind == "raw"
    assert rows == [{"b": 43, "n": 2, "s": 51.5, "a": 25.75, "lo": 21.5, "hi": "1.3.0"},
                    {"b": "43", "n": 1, "s": -5, "a": -5, "lo": -5}]
    _, rows = query.run(query.parse("SELECT COUNT() AS n FROM devices WHERE deviceId = 'x'"),
                        TWINS)
    assert rows == [{"n": 0}]


def test_devices_jobs_collection() -> None:
    docs = [{"deviceId": "d1", "jobId": "j1", "jobType": "scheduleUpdateTwin",
             "status": "completed"},
            {"deviceId": "d2", "jobId": "j1", "jobType": "scheduleUpdateTwin", "status": "failed"}]
    kind, rows = query.run(query.parse(
        "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' AND "
        "devices.jobs.status = 'failed'"), docs)
    assert kind == "deviceJob" and rows == [docs[1]]


@pytest.mark.parametrize("sql,position,fragment", [
    ("SELECT * FROM devices WHERE tags.a = 'x' AND", 44, "end of query"),
    ("SELECT * FROM devices WHERE tags.a = 'open", 37, "unterminated string"),
    ("SELECT * FROM devices WHERE tags.a # 1", 35, "unexpected character"),
    ("SELECT * FROM devices WHERE NOPE(tags.a)", 28, "unknown function"),
    ("SELECT * FROM devices WHERE IS_DEFINED(tags.a, tags.b)", 28, "takes 1 argument"),
    ("SELECT * FROM devices WHERE COUNT() = 1", 28, "only allowed in the SELECT list"),
    ("SELECT * FROM devices.jobs GROUP BY status", 14, "only SELECT *"),
    ("SELECT deviceId FROM devices.jobs", 21, "only SELECT *"),
    ("SELECT deviceId, COUNT() AS n FROM devices", 35, "aggregate or a GROUP BY"),
    ("SELECT * FROM devices GROUP BY status", 14, "projection list"),
    ("SELECT TOP x * FROM devices", 11, "TOP"),
    ("SELECT * FROM devices WHERE a IN 'x'", 33, "array"),
    ("SELECT * FROM devices WHERE tags.a = 12abc", 37, "malformed number"),
    ("SELECT * FROM devices WHERE tags.a = 'a\\q'", 39, "unknown escape"),
    ("SELECT * FROM devices WHERE tags.a = 1 1", 39, "end of query"),
    ("SELECT * FROM devices, devices", 21, "end of query"),
])
def test_errors_carry_position(sql: str, position: int, fragment: str) -> None:
    with pytest.raises(query.QueryError) as err:
        query.parse(sql)
    assert err.value.position == position, str(err.value)
    assert err.value.line == 1 and err.value.column == position + 1
    assert fragment in str(err.value)


def test_error_position_on_later_line() -> None:
    with pytest.raises(query.QueryError) as err:
        query.parse("SELECT *\nFROM devices\nWHERE tags.x = = 1")
    assert (err.value.line, err.value.column) == (3, 16)


def test_tokenizer_values() -> None:
    toks = tokenize("select [[group]] 'it''s' \"q\\\"\" 0x1f 2.5e1 .5 <> <=")
    assert [(t.kind, t.value) for t in toks] == [
        ("kw", "select"), ("name", "group"), ("str", "it's"), ("str", 'q"'), ("num", 31),
        ("num", 25.0), ("num", 0.5), ("op", "<>"), ("op", "<="), ("end", None)]


def test_condition_for_jobs() -> None:
    cond = query.parse_condition("deviceId IN ['pump-1', 'fan-1'] AND IS_DEFINED(DeviceId)")
    assert [t["deviceId"] for t in TWINS if query.matches(cond, t)] == ["pump-1", "fan-1"]
    with pytest.raises(query.QueryError) as err:
        query.parse_condition("SELECT * FROM devices WHERE x = 1")
    assert "WHERE part" in str(err.value) or err.value.position is not None
    with pytest.raises(query.QueryError):
        query.parse_condition("")


def test_paging() -> None:
    rows = list(range(5))
    first, token = query.page(rows, "2", None)
    assert first == [0, 1] and token
    second, token = query.page(rows, "2", token)
    third, last = query.page(rows, "2", token)
    assert second == [2, 3] and third == [4] and last is None
    assert query.page(rows, "5000", None) == (rows, None)  # clamped to 1000
    assert query.page(rows, "0", None)[0] == [0]          # at least one
    for bad in ("!!", base64.b64encode(b"-1").decode(), base64.b64encode(b"x").decode()):
        with pytest.raises(ValueError):
            query.page(rows, "2", bad)
    with pytest.raises(ValueError):
        query.page(rows, "two", None)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("SELECT*FROMdevicesWHEREtags.a=<>!'\"()[],0x19 "
                                             "ANDORNOTINISDEFINED_\\u\n")), max_size=60))
def test_fuzz_only_query_errors(text: str) -> None:
    """Any input either parses and runs or raises QueryError: never another exception."""
    try:
        query.run(query.parse(text), TWINS)
    except query.QueryError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"SELECT \* FROM devices WHERE (tags\.(floor|building|group)|deviceId) "
                     r"(=|!=|<|>|<=|>=) (-?[0-9]{1,3}|'[a-z0-9-]{0,6}'|true|null)",
                     fullmatch=True))
def test_fuzz_well_formed_conditions_run(text: str) -> None:
    kind, rows = query.run(query.parse(text), TWINS)
    assert kind == "twin" and all(r in TWINS for r in rows)


# --- job requests ----------------------------------------------------------------------------
NOW = 1_800_000_000.0


def test_job_request_defaults_and_schedule() -> None:
    job = parse_job_request("j1", {"type": "scheduleDirectMethod", "queryCondition": "tags.a = 1",
                                   "cloudToDeviceMethod": {"methodName": "reboot"}}, NOW)
    assert (job.type, job.status, job.start, job.max_execution) == (
        "scheduleDeviceMethod", "queued", NOW, 3600)
    assert job.spec["cloudToDeviceMethod"]["responseTimeoutInSeconds"] == 30
    later = parse_job_request("j2", {"type": "scheduleUpdateTwin", "queryCondition": "tags.a = 1",
                                     "updateTwin": {"tags": {"a": 2}, "etag": "*"},
                                     "startTime": "2027-01-15T08:00:00.1234567Z"}, NOW)
    assert later.status == "scheduled" and later.start == parse_time("2027-01-15T08:00:00.123456Z",
                                                                     "t")
    assert later.spec == {"updateTwin": {"tags": {"a": 2}}}
    past = parse_job_request("j3", {"type": "scheduleUpdateTwin", "queryCondition": "tags.a = 1",
                                    "updateTwin": {"tags": {"a": 2}},
                                    "startTime": "2001-01-01T00:00:00"}, NOW)
    assert past.status == "queued" and past.start == NOW


@pytest.mark.parametrize("job_id,body", [
    ("bad/id", {"type": "scheduleUpdateTwin"}),
    ("j", ["not", "an", "object"]),
    ("j", {"jobId": "other", "type": "scheduleUpdateTwin"}),
    ("j", {"type": "scheduleUpdateTwin", "queryCondition": "x = 1"}),
    ("j", {"type": "scheduleUpdateTwin", "queryCondition": "x = 1", "updateTwin": {}}),
    ("j", {"type": "scheduleUpdateTwin", "queryCondition": "x = 1",
           "updateTwin": {"tags": {"bad key": 1}}}),
    ("j", {"type": "scheduleDeviceMethod", "queryCondition": "x = 1",
           "cloudToDeviceMethod": {"methodName": "a/b"}}),
    ("j", {"type": "scheduleDeviceMethod", "queryCondition": "x = 1",
           "cloudToDeviceMethod": {"methodName": "m", "connectTimeoutInSeconds": 9999}}),
    ("j", {"type": "scheduleDeviceMethod", "queryCondition": 42,
           "cloudToDeviceMethod": {"methodName": "m"}}),
])
def test_job_request_rejected(job_id: str, body: Any) -> None:
    with pytest.raises(HubError) as err:
        parse_job_request(job_id, body, NOW)
    assert err.value.status == 400
