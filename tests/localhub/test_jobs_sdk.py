"""Jobs v2 and the query language through the official SDKs, unchanged, against a local hub.

Service side: azure-iot-hub's IoTHubJobManager and IoTHubRegistryManager over HTTPS; device side:
azure-iot-device clients over MQTT/TLS (and the raw MQTT test client where a device must misbehave).
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import pytest
from azure.iot.device import IoTHubDeviceClient, MethodResponse
from azure.iot.hub import IoTHubJobManager, IoTHubRegistryManager
from azure.iot.hub.models import (
    CloudToDeviceMethod,
    JobRequest,
    QuerySpecification,
    Twin,
    TwinProperties,
)
from localhub.protocol.mqtt_codec import Publish
from localhub.testing import HubProcess
from localhub_rawclient import connect_device
from msrest.exceptions import HttpOperationError


@pytest.fixture
def service(module_hub: HubProcess, monkeypatch: pytest.MonkeyPatch
            ) -> tuple[IoTHubJobManager, IoTHubRegistryManager]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(module_hub.ca_path))
    cs = module_hub.service_connection_string
    return (IoTHubJobManager.from_connection_string(cs),
            IoTHubRegistryManager.from_connection_string(cs))


class SdkDevice:
    """An azure-iot-device client that records every method call (with the time it arrived)
    and every desired-properties patch."""

    def __init__(self, hub: HubProcess, device_id: str) -> None:
        self.device_id = device_id
        cs = hub.create_device(device_id)
        self.client = IoTHubDeviceClient.create_from_connection_string(
            hub.sdk_connection_string(cs), server_verification_cert=hub.ca_pem)
        self.calls: list[tuple[float, str, Any]] = []
        self.patches: queue.Queue[dict[str, Any]] = queue.Queue()
        self.called = threading.Event()
        self.client.on_method_request_received = self._on_method
        self.client.on_twin_desired_properties_patch_received = self.patches.put
        self.client.connect()

    def _on_method(self, request: Any) -> None:
        self.calls.append((time.time(), request.name, request.payload))
        self.client.send_method_response(MethodResponse.create_from_method_request(
            request, 200, {"rebooted": self.device_id, "got": request.payload}))
        self.called.set()


@pytest.fixture
def devices(module_hub: HubProcess) -> Iterator[Callable[[str], SdkDevice]]:
    made: list[SdkDevice] = []

    def make(device_id: str) -> SdkDevice:
        dev = SdkDevice(module_hub, device_id)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.client.shutdown()


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _tag(hub: HubProcess, device_id: str, tags: dict[str, Any]) -> None:
    hub.update_twin(device_id, {"tags": tags})


def _wait_job(jobs: IoTHubJobManager, job_id: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = jobs.get_scheduled_job(job_id)
        if job.status in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job.status}"
        time.sleep(0.1)


def _twin_ids(registry: IoTHubRegistryManager, sql: str) -> list[str]:
    """Device ids of a SELECT * query through the SDK (it reads every item as a Twin)."""
    return sorted(t.device_id for t in registry.query_iot_hub(QuerySpecification(query=sql),
                                                              None, 1000).items)


def test_scheduled_method_job_on_building_43(module_hub: HubProcess, service, devices) -> None:
    jobs, registry = service
    run = _uid()
    in_43 = [devices(f"b43-{run}-{i}") for i in range(2)]
    elsewhere = devices(f"b44-{run}")
    offline = f"b43-{run}-offline"
    module_hub.create_device(offline)
    for dev in in_43:
        _tag(module_hub, dev.device_id, {"building": "43", "run": run})
    _tag(module_hub, offline, {"building": "43", "run": run})
    _tag(module_hub, elsewhere.device_id, {"building": "44", "run": run})

    start = datetime.now(timezone.utc) + timedelta(seconds=2)
    job_id = f"reboot-{run}"
    created = jobs.create_scheduled_job(job_id, JobRequest(
        job_id=job_id, type="scheduleDeviceMethod",
        cloud_to_device_method=CloudToDeviceMethod(method_name="reboot", payload={"delay": 1},
                                                   response_timeout_in_seconds=10),
        query_condition=f"tags.building = '43' AND tags.run = '{run}'",
        start_time=start, max_execution_time_in_seconds=60))
    assert created.job_id == job_id and created.type == "scheduleDeviceMethod"
    assert created.status == "scheduled"
    assert abs((created.start_time - start).total_seconds()) < 0.01
    # Not run early: still scheduled and no device called until the start time.
    assert jobs.get_scheduled_job(job_id).status == "scheduled"
    assert not any(d.calls for d in in_43)

    done = _wait_job(jobs, job_id)
    assert done.status == "completed" and done.end_time >= start
    stats = done.device_job_statistics
    assert (stats.device_count, stats.succeeded_count, stats.failed_count) == (3, 2, 1)
    assert stats.running_count == 0 and stats.pending_count == 0
    for dev in in_43:
        assert len(dev.calls) == 1
        called_at, name, payload = dev.calls[0]
        assert called_at >= start.timestamp() and (name, payload) == ("reboot", {"delay": 1})
    assert not elsewhere.calls

    # azure-iot-hub reads every query item as a Twin: per-device job records come raw.
    per_device = {r["deviceId"]: r for r in module_hub.query(
        f"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = '{job_id}'")}
    assert set(per_device) == {d.device_id for d in in_43} | {offline}
    for dev in in_43:
        row = per_device[dev.device_id]
        assert row["status"] == "completed" and row["jobType"] == "scheduleDeviceMethod"
        assert row["outcome"]["deviceMethodResponse"] == {
            "status": 200, "payload": {"rebooted": dev.device_id, "got": {"delay": 1}}}
    assert per_device[offline]["status"] == "failed"
    assert per_device[offline]["error"]["code"] == "DeviceNotOnline"

    listed = jobs.query_scheduled_jobs("scheduleDeviceMethod", "completed")
    assert job_id in [item["jobId"] for item in listed.items]


def test_twin_update_job_sets_tags_and_desired(module_hub: HubProcess, service, devices) -> None:
    jobs, registry = service
    run = _uid()
    connected = devices(f"tw-{run}-0")
    connected.client.get_twin()  # subscribes to desired patches
    offline = f"tw-{run}-1"
    module_hub.create_device(offline)
    untouched = f"tw-{run}-2"
    module_hub.create_device(untouched)
    for device_id, floor in ((connected.device_id, 3), (offline, 3), (untouched, 4)):
        _tag(module_hub, device_id, {"run": run, "floor": floor})

    job_id = f"twin-{run}"
    jobs.create_scheduled_job(job_id, JobRequest(
        job_id=job_id, type="scheduleUpdateTwin",
        update_twin=Twin(etag="*", tags={"maintenance": {"window": "night"}},
                         properties=TwinProperties(desired={"telemetryInterval": 17})),
        query_condition=f"tags.run = '{run}' AND tags.floor = 3",
        start_time=datetime.now(timezone.utc), max_execution_time_in_seconds=30))
    done = _wait_job(jobs, job_id)
    assert done.status == "completed"
    assert done.device_job_statistics.succeeded_count == 2

    for device_id in (connected.device_id, offline):
        twin = registry.get_twin(device_id)
        assert twin.tags == {"run": run, "floor": 3, "maintenance": {"window": "night"}}
        assert twin.properties.desired["telemetryInterval"] == 17
    assert "maintenance" not in registry.get_twin(untouched).tags
    patch = connected.patches.get(timeout=10)
    assert patch["telemetryInterval"] == 17 and patch["$version"] >= 2

    assert _twin_ids(registry, f"SELECT * FROM devices WHERE tags.run = '{run}' "
                               "AND tags.maintenance.window = 'night'") == \
        sorted([connected.device_id, offline])


def test_query_reported_connectivity(module_hub: HubProcess, service, devices) -> None:
    _, registry = service
    run = _uid()
    for i, kind in enumerate(("cellular", "cellular", "wifi")):
        dev = devices(f"conn-{run}-{i}")
        _tag(module_hub, dev.device_id, {"run": run})
        dev.client.patch_twin_reported_properties({"connectivity": {"type": kind},
                                                   "rssi": -60 - 10 * i})
    assert _twin_ids(registry, f"SELECT * FROM devices WHERE tags.run = '{run}' AND "
                               "properties.reported.connectivity.type = 'cellular'") == \
        [f"conn-{run}-0", f"conn-{run}-1"]
    result = registry.query_iot_hub(QuerySpecification(
        query=f"SELECT COUNT() AS n FROM devices WHERE tags.run = '{run}'"))
    assert result.type == "raw"
    # The SDK reads raw rows as Twins too, so projections are checked over the hub's REST API.
    grouped = module_hub.query(
        f"SELECT properties.reported.connectivity.type AS kind, COUNT() AS n, "
        f"AVG(properties.reported.rssi) AS rssi FROM devices WHERE tags.run = '{run}' "
        "GROUP BY properties.reported.connectivity.type")
    assert sorted(grouped, key=lambda r: r["kind"]) == [
        {"kind": "cellular", "n": 2, "rssi": -65}, {"kind": "wifi", "n": 1, "rssi": -80}]
    weak = module_hub.query(f"SELECT deviceId FROM devices WHERE tags.run = '{run}' AND "
                            "properties.reported.rssi < -65 AND "
                            "ENDS_WITH(deviceId, '-2') AND NOT IS_DEFINED(tags.floor)")
    assert weak == [{"deviceId": f"conn-{run}-2"}]


@pytest.mark.parametrize("sql,column", [
    ("SELECT * FROM devices WHERE tags.building = = 43", 45),
    ("SELECT * FROM devices WHERE STARTSWITH(deviceId)", 29),
    ("SELECT * FROM devices.modules", 15),
    ("SELECT * FORM devices", 10),
])
def test_malformed_query_is_400_with_position(service, sql: str, column: int) -> None:
    _, registry = service
    with pytest.raises(HttpOperationError) as err:
        registry.query_iot_hub(QuerySpecification(query=sql))
    assert err.value.response.status_code == 400
    body = err.value.response.json()
    assert body["Message"].startswith("ErrorCode:SqlQueryInvalid;")
    assert f"line 1, column {column}" in body["Message"]


@pytest.mark.parametrize("request_body,fragment", [
    ({"type": "scheduleDeviceMethod", "queryCondition": "deviceId = 'x'"}, "cloudToDeviceMethod"),
    ({"type": "scheduleDeviceMethod", "queryCondition": "deviceId = ",
      "cloudToDeviceMethod": {"methodName": "m"}}, "queryCondition"),
    ({"type": "scheduleDeviceMethod", "queryCondition": "deviceId = 'x'",
      "cloudToDeviceMethod": {"methodName": "m", "responseTimeoutInSeconds": 3000}},
     "responseTimeoutInSeconds"),
    ({"type": "scheduleUpdateTwin", "queryCondition": "deviceId = 'x'",
      "updateTwin": {"properties": {"reported": {"a": 1}}}}, "reported"),
    ({"type": "export", "queryCondition": "deviceId = 'x'"}, "type must be"),
    ({"type": "scheduleUpdateTwin", "queryCondition": "deviceId = 'x'",
      "updateTwin": {"tags": {"a": 1}}, "startTime": "next tuesday"}, "startTime"),
    ({"type": "scheduleUpdateTwin", "queryCondition": "deviceId = 'x'",
      "updateTwin": {"tags": {"a": 1}}, "maxExecutionTimeInSeconds": -1},
     "maxExecutionTimeInSeconds"),
])
def test_malformed_job_spec_is_400(module_hub: HubProcess, request_body: dict[str, Any],
                                   fragment: str) -> None:
    from localhub.client.hub_client import HubRequestError
    with pytest.raises(HubRequestError) as err:
        module_hub.client.request("PUT", f"/jobs/v2/bad-{_uid()}", request_body)
    assert err.value.status == 400 and fragment in err.value.message


def test_unparseable_job_body_and_unknown_job(module_hub: HubProcess, service) -> None:
    from localhub.client.hub_client import HubRequestError
    jobs, _ = service
    with pytest.raises(HubRequestError) as err:
        module_hub.client.request("PUT", "/jobs/v2/raw", raw_body=b"{not json")
    assert err.value.status == 400
    with pytest.raises(HttpOperationError) as sdk_err:
        jobs.get_scheduled_job("no-such-job")
    assert sdk_err.value.response.status_code == 404
    job_id = f"dup-{_uid()}"
    body = {"type": "scheduleUpdateTwin", "queryCondition": "deviceId = 'nobody'",
            "updateTwin": {"tags": {"a": 1}}}
    module_hub.client.request("PUT", f"/jobs/v2/{job_id}", body)
    with pytest.raises(HubRequestError) as err:
        module_hub.client.request("PUT", f"/jobs/v2/{job_id}", body)
    assert err.value.status == 409


def test_cancel_scheduled_job(module_hub: HubProcess, service, devices) -> None:
    jobs, _ = service
    run = _uid()
    dev = devices(f"cancel-{run}")
    job_id = f"cancel-{run}"
    jobs.create_scheduled_job(job_id, JobRequest(
        job_id=job_id, type="scheduleDeviceMethod",
        cloud_to_device_method=CloudToDeviceMethod(method_name="reboot", payload=None,
                                                   response_timeout_in_seconds=5),
        query_condition=f"deviceId = '{dev.device_id}'",
        start_time=datetime.now(timezone.utc) + timedelta(minutes=10),
        max_execution_time_in_seconds=60))
    assert job_id in [j["jobId"] for j in jobs.query_scheduled_jobs(None, "scheduled").items]
    cancelled = jobs.cancel_scheduled_job(job_id)
    assert cancelled.status == "cancelled" and cancelled.end_time is not None
    assert jobs.get_scheduled_job(job_id).status == "cancelled"
    assert job_id not in [j["jobId"] for j in jobs.query_scheduled_jobs(None, "scheduled").items]
    # Cancelling again returns the job unchanged.
    assert jobs.cancel_scheduled_job(job_id).status == "cancelled"
    assert not dev.calls


def test_silent_device_times_out_and_is_failed(module_hub: HubProcess, service) -> None:
    jobs, registry = service
    run = _uid()
    silent = f"silent-{run}"
    module_hub.create_device(silent)
    raw = connect_device(module_hub, silent)
    try:
        raw.subscribe("$iothub/methods/POST/#")
        job_id = f"timeout-{run}"
        started = time.monotonic()
        jobs.create_scheduled_job(job_id, JobRequest(
            job_id=job_id, type="scheduleDeviceMethod",
            cloud_to_device_method=CloudToDeviceMethod(method_name="hang", payload=None,
                                                       response_timeout_in_seconds=5),
            query_condition=f"deviceId = '{silent}'", max_execution_time_in_seconds=60))
        request = raw.expect(Publish, timeout=10)
        assert request.topic.startswith("$iothub/methods/POST/hang/")
        done = _wait_job(jobs, job_id)
        assert time.monotonic() - started < 20
    finally:
        raw.close()
    assert done.status == "completed"
    assert done.device_job_statistics.failed_count == 1
    row = module_hub.query(f"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = '{job_id}'")[0]
    assert row["status"] == "failed" and row["error"]["code"] == "GatewayTimeoutError"
