"""Jobs across hub restarts, cancelling a running job, the CLI, and a job over a simulated fleet."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from localhub.client.hub_client import HubRequestError
from localhub.protocol.mqtt_codec import Publish
from localhub.protocol.twin import iso_now
from localhub.testing import HubProcess, loadsim
from localhub_rawclient import RawClient, connect_device

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _job(hub: HubProcess, job_id: str) -> dict[str, Any]:
    return hub.client.request("GET", f"/jobs/v2/{job_id}")[2]


def _wait(hub: HubProcess, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = _job(hub, job_id)
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def _method_job(hub: HubProcess, job_id: str, condition: str, start: float | None = None,
                timeout: int = 30, connect_timeout: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "scheduleDeviceMethod", "queryCondition": condition,
                            "cloudToDeviceMethod": {"methodName": "ping", "payload": {"n": 1},
                                                    "responseTimeoutInSeconds": timeout,
                                                    "connectTimeoutInSeconds": connect_timeout}}
    if start is not None:
        body["startTime"] = iso_now(start)
    return hub.client.request("PUT", f"/jobs/v2/{job_id}", body)[2]


def _answer(raw: RawClient, status: int = 200) -> Publish:
    """Wait for a method request on a raw device and answer it."""
    request = raw.expect(Publish, timeout=10)
    rid = request.topic.rsplit("$rid=", 1)[1]
    raw.publish(f"$iothub/methods/res/{status}/?$rid={rid}", b'{"ok": true}', qos=0)
    return request


def test_jobs_survive_restart_and_a_running_job_resumes(hub: HubProcess) -> None:
    hub.create_device("slow")
    hub.create_device("later")
    raw = connect_device(hub, "slow")
    raw.subscribe("$iothub/methods/POST/#")
    # connectTimeoutInSeconds: after the restart the job waits for the device to come back.
    _method_job(hub, "running-job", "deviceId = 'slow'", connect_timeout=20)
    raw.expect(Publish, timeout=10)  # delivered, never answered: the job is running
    assert _job(hub, "running-job")["status"] == "running"
    _method_job(hub, "scheduled-job", "deviceId = 'later'", start=time.time() + 3600)

    hub.kill()  # a crash: nothing gets to say goodbye
    raw.close()
    hub.start()

    assert _job(hub, "scheduled-job")["status"] == "scheduled"
    # The running job resumed; the device gets the method again once it is back.
    assert _job(hub, "running-job")["status"] == "running"
    raw = connect_device(hub, "slow")
    try:
        raw.subscribe("$iothub/methods/POST/#")
        again = _answer(raw)
        done = _wait(hub, "running-job")
    finally:
        raw.close()
    assert again.topic.startswith("$iothub/methods/POST/ping/")
    assert done["status"] == "completed"
    stats = done["deviceJobStatistics"]
    assert (stats["deviceCount"], stats["succeededCount"]) == (1, 1)
    rows = hub.query("SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'running-job'")
    assert len(rows) == 1 and rows[0]["status"] == "completed"
    assert rows[0]["outcome"]["deviceMethodResponse"] == {"status": 200, "payload": {"ok": True}}
    hub.client.request("POST", "/jobs/v2/scheduled-job/cancel")
    assert _job(hub, "scheduled-job")["status"] == "cancelled"


def test_cancel_running_job_cancels_unfinished_devices(hub: HubProcess) -> None:
    for name in ("quick", "stuck"):
        hub.create_device(name)
        hub.update_twin(name, {"tags": {"group": "c"}})
    quick = connect_device(hub, "quick")
    stuck = connect_device(hub, "stuck")
    try:
        quick.subscribe("$iothub/methods/POST/#")
        stuck.subscribe("$iothub/methods/POST/#")
        _method_job(hub, "to-cancel", "tags.[[group]] = 'c'", timeout=60)
        _answer(quick)
        stuck.expect(Publish, timeout=10)
        deadline = time.monotonic() + 10
        while _job(hub, "to-cancel")["deviceJobStatistics"]["succeededCount"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        running = _job(hub, "to-cancel")
        assert running["status"] == "running"
        assert running["deviceJobStatistics"]["runningCount"] == 1
        cancelled = hub.client.request("POST", "/jobs/v2/to-cancel/cancel")[2]
    finally:
        quick.close()
        stuck.close()
    assert cancelled["status"] == "cancelled"
    stats = cancelled["deviceJobStatistics"]
    assert (stats["succeededCount"], stats["failedCount"], stats["runningCount"]) == (1, 1, 0)
    rows = {r["deviceId"]: r for r in hub.query("SELECT * FROM devices.jobs")}
    assert rows["quick"]["status"] == "completed" and rows["stuck"]["status"] == "cancelled"
    assert hub.query("SELECT * FROM devices.jobs WHERE status = 'cancelled'") == [rows["stuck"]]
    with pytest.raises(HubRequestError) as err:
        hub.client.request("GET", "/jobs/v2/query", params={"jobStatus": "sleeping"})
    assert err.value.status == 400
    listed = hub.client.request("GET", "/jobs/v2/query", params={"jobStatus": "cancelled"})[2]
    assert [j["jobId"] for j in listed] == ["to-cancel"]


def test_job_query_pages(module_hub: HubProcess) -> None:
    for i in range(5):
        module_hub.client.request("PUT", f"/jobs/v2/page-{i}", {
            "type": "scheduleUpdateTwin", "queryCondition": "deviceId = 'none'",
            "updateTwin": {"tags": {"x": i}}, "startTime": iso_now(time.time() + 3600)})
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        headers = {"x-ms-max-item-count": "2"}
        if token:
            headers["x-ms-continuation"] = token
        _, resp_headers, page = module_hub.client.request(
            "GET", "/jobs/v2/query", headers=headers,
            params={"jobType": "scheduleUpdateTwin", "jobStatus": "scheduled"})
        assert resp_headers["x-ms-item-type"] == "jobResponse" and len(page) <= 2
        seen += [j["jobId"] for j in page if j["jobId"].startswith("page-")]
        pages += 1
        token = resp_headers.get("x-ms-continuation")
        if not token:
            break
    assert seen == [f"page-{i}" for i in range(5)] and pages >= 3
    with pytest.raises(HubRequestError) as err:
        module_hub.client.request("GET", "/jobs/v2/query",
                                  headers={"x-ms-continuation": "%%%not-base64"})
    assert err.value.status == 400


def _cli(hub: HubProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localhub", "--state", str(hub.state_dir), *args],
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(TOOLS), "PATH": "", "COLUMNS": "200"})


def test_cli_job_and_query(module_hub: HubProcess) -> None:
    for name in ("cli-a", "cli-b"):
        module_hub.create_device(name)
    out = _cli(module_hub, "job", "create", "cli-twin", "--query", "STARTS_WITH(deviceId, 'cli-')",
               "--tags", '{"owner": "cli"}', "--desired", '{"led": "on"}', "--wait")
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout)
    assert job["status"] == "completed" and job["deviceJobStatistics"]["succeededCount"] == 2

    out = _cli(module_hub, "query",
               "SELECT tags.owner AS owner, COUNT() AS n FROM devices WHERE tags.owner = 'cli' "
               "GROUP BY tags.owner")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"owner": "cli", "n": 2}]

    out = _cli(module_hub, "job", "create", "cli-later", "--query", "deviceId = 'cli-a'",
               "--method", "reboot", "--in", "600")
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "scheduled", out.stderr
    out = _cli(module_hub, "job", "list", "--status", "scheduled")
    assert out.returncode == 0 and "cli-later" in out.stdout, out.stderr
    out = _cli(module_hub, "job", "cancel", "cli-later")
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "cancelled"
    out = _cli(module_hub, "job", "show", "cli-twin", "--devices")
    shown = json.loads(out.stdout)
    assert sorted(d["deviceId"] for d in shown["devices"]) == ["cli-a", "cli-b"]

    bad = _cli(module_hub, "query", "SELECT * FROM devices WHERE")
    assert bad.returncode != 0 and "400" in bad.stderr and "column" in bad.stderr
    bad = _cli(module_hub, "job", "create", "--query", "deviceId = 'x'")
    assert bad.returncode != 0 and "--method" in bad.stderr


def test_method_job_over_simulated_fleet(module_hub: HubProcess) -> None:
    report = loadsim.run_method_job_report(module_hub, devices=50, prefix="fleet")
    assert report["devices"] == 50 and report["answered"] == 50
    assert 0 < report["jobSeconds"] < 30
    rows = module_hub.query(
        f"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = '{report['jobId']}'")
    assert len(rows) == 50 and {r["status"] for r in rows} == {"completed"}
    assert rows[0]["outcome"]["deviceMethodResponse"] == {
        "status": 200, "payload": {"device": "fleet-00000", "method": "ping",
                                   "payload": {"n": 1}}}
