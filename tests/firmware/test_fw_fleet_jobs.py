"""The fleet scenarios of the reference (iothub-schedule-jobs, iothub-device-management), with the
official service SDK and the real agent on the host emulation layer: a `reboot` method scheduled
on the devices of building 43, a twin update over a query, and a query of reported connectivity."""

import time
from datetime import datetime, timedelta, timezone

from azure.iot.hub import IoTHubJobManager
from azure.iot.hub.models import CloudToDeviceMethod, JobRequest, Twin, TwinProperties

from fw_support import provision_board, reported, wait_for
from hostemu.testing import BoardProcess


def _wait_job(jobs: IoTHubJobManager, job_id: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_scheduled_job(job_id)
        if job.status in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_scheduled_reboot_job_and_twin_update_over_the_fleet(fw_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fw_hub.ca_path))
    jobs = IoTHubJobManager.from_connection_string(fw_hub.service_connection_string)
    in_43, elsewhere = "fleet-43", "fleet-44"
    folders = {d: provision_board(fw_hub, tmp_path / d, d, interval=30) for d in (in_43, elsewhere)}
    for device, building in ((in_43, "43"), (elsewhere, "44")):
        fw_hub.update_twin(device, {"tags": {"building": building}})
    with BoardProcess(folders[in_43]) as b43, BoardProcess(folders[elsewhere]) as b44:
        for board in (b43, b44):
            board.expect_json("hub", 30, connected=True)
        first = wait_for(lambda: reported(fw_hub, in_43).get("iothubDM"), what="first report")["reboot"]["lastReboot"]

        # The reported connectivity of the fleet, as the device-management reference queries it.
        # Each board reports its connectivity in a patch of its own, which may come after the others.
        for device in (in_43, elsewhere):
            wait_for(lambda: reported(fw_hub, device).get("connectivity"), what=f"connectivity of {device}")
        rows = fw_hub.query("SELECT deviceId, properties.reported.connectivity.type AS link FROM devices "
                            "WHERE tags.building IN ['43', '44']")
        assert {row["deviceId"]: row.get("link") for row in rows} == {in_43: "wifi", elsewhere: "wifi"}

        start = datetime.now(timezone.utc) + timedelta(seconds=3)
        jobs.create_scheduled_job("reboot-43", JobRequest(
            job_id="reboot-43", type="scheduleDeviceMethod", start_time=start, max_execution_time_in_seconds=60,
            cloud_to_device_method=CloudToDeviceMethod(method_name="reboot", response_timeout_in_seconds=15),
            query_condition="tags.building = '43'"))
        assert jobs.get_scheduled_job("reboot-43").status == "scheduled"
        b43.expect_json("booted", 40, boot=2)  # the agent rebooted
        done = _wait_job(jobs, "reboot-43")
        b43.expect_json("hub", 30, connected=True)
        after = wait_for(lambda: reported(fw_hub, in_43)["device"]["bootCount"] == 2 and reported(fw_hub, in_43),
                         what="report after the reboot")

        twin_job_start = datetime.now(timezone.utc)
        jobs.create_scheduled_job("interval-43", JobRequest(
            job_id="interval-43", type="scheduleUpdateTwin", start_time=twin_job_start, max_execution_time_in_seconds=60,
            update_twin=Twin(etag="*", tags={"floor": "2"},
                             properties=TwinProperties(desired={"telemetryInterval": 7})),
            query_condition="tags.building = '43'"))
        twin_done = _wait_job(jobs, "interval-43")
        ack = wait_for(lambda: reported(fw_hub, in_43).get("telemetryInterval", {}).get("value") == 7
                       and reported(fw_hub, in_43)["telemetryInterval"], what="the agent's acknowledgement")

    assert done.status == "completed" and done.device_job_statistics.succeeded_count == 1
    assert done.device_job_statistics.device_count == 1  # building 44 was not touched
    assert len(b44.events("booted")) == 1 and len(b43.events("booted")) == 2
    assert after["iothubDM"]["reboot"]["lastReboot"] > first
    assert twin_done.status == "completed"
    assert ack["ac"] == 200
    assert fw_hub.get_twin(in_43)["tags"] == {"building": "43", "floor": "2"}
    assert "floor" not in fw_hub.get_twin(elsewhere)["tags"]
