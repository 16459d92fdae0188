"""The job runner's fan-out policy, in process: a real Hub over a real SQLite store, with device
connections stood in for by a small session object (the one thing not real here), so the bound
on devices in flight and the time limits can be checked exactly and fast."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from localhub.protocol.topics import SUB_METHODS
from localhub.server import open_hub
from localhub.services.hub import Hub
from localhub.services.jobs import JobService


class Device:
    """Implements sessions.DeviceSession: answers each method after ``delay`` s, or never."""

    def __init__(self, hub: Hub, device_id: str, delay: float | None, probe: dict[str, int]
                 ) -> None:
        self.hub = hub
        self.device_id = self.identity = device_id
        self.module_id = None
        self.subscriptions = {SUB_METHODS: 0}
        self.delay = delay
        self.probe = probe

    def publish(self, topic: str, payload: bytes, qos: int) -> int | None:
        rid = topic.rsplit("$rid=", 1)[1]
        self.probe["inflight"] += 1
        self.probe["max"] = max(self.probe["max"], self.probe["inflight"])
        self.probe["calls"] += 1
        if self.delay is not None:
            asyncio.get_running_loop().call_later(self.delay, self._answer, rid)
        return None

    def _answer(self, rid: str) -> None:
        self.probe["inflight"] -= 1
        self.hub.methods.on_response(self.device_id, rid, 200, b'{"ok":1}')

    def close(self, reason: str) -> None:
        pass


def _hub(tmp_path: Path, concurrency: int) -> Hub:
    hub = open_hub(tmp_path / "hub.sqlite3", frozenset({"localhost"}), {})
    hub.jobs = JobService(hub.jobs.store, hub.registry, hub.twins, hub.methods, hub.clock,
                          concurrency=concurrency)
    return hub


async def _until_done(hub: Hub, job_id: str) -> dict[str, Any]:
    while True:
        job = hub.jobs.get(job_id)
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.01)


def _method_body(timeout: int = 30, max_time: int = 60) -> dict[str, Any]:
    return {"type": "scheduleDeviceMethod", "queryCondition": "STARTS_WITH(deviceId, 'd')",
            "cloudToDeviceMethod": {"methodName": "m", "responseTimeoutInSeconds": timeout},
            "maxExecutionTimeInSeconds": max_time}


def test_in_flight_devices_are_bounded(tmp_path: Path) -> None:
    async def main() -> None:
        hub = _hub(tmp_path, concurrency=4)
        probe = {"inflight": 0, "max": 0, "calls": 0}
        for i in range(30):
            hub.registry.create(f"d{i:02d}")
            hub.sessions.attach(Device(hub, f"d{i:02d}", 0.005, probe))
        hub.jobs.start()
        hub.jobs.create("bounded", _method_body())
        job = await _until_done(hub, "bounded")
        await hub.jobs.stop()
        hub.close()
        assert job["status"] == "completed"
        assert job["deviceJobStatistics"]["succeededCount"] == 30
        assert probe["calls"] == 30 and probe["max"] == 4

    asyncio.run(main())


def test_silent_and_offline_devices_fail_without_blocking_the_rest(tmp_path: Path) -> None:
    async def main() -> None:
        hub = _hub(tmp_path, concurrency=2)
        probe = {"inflight": 0, "max": 0, "calls": 0}
        for i in range(6):
            hub.registry.create(f"d{i}")
        hub.sessions.attach(Device(hub, "d0", None, probe))  # never answers
        hub.sessions.attach(Device(hub, "d1", None, probe))  # never answers
        for i in (2, 3):
            hub.sessions.attach(Device(hub, f"d{i}", 0.001, probe))
        # d4, d5: registered but offline
        hub.jobs.start()
        job = hub.jobs.create("mixed", _method_body())
        # Shorten the per-device timeout below IoT Hub's 5 s minimum: only the policy is tested.
        hub.jobs._active["mixed"].job.spec["cloudToDeviceMethod"]["responseTimeoutInSeconds"] = 0.2
        job = await _until_done(hub, "mixed")
        rows = {r["deviceId"]: r for r in hub.jobs.device_jobs()}
        await hub.jobs.stop()
        hub.close()
        assert job["status"] == "completed"
        stats = job["deviceJobStatistics"]
        assert (stats["succeededCount"], stats["failedCount"]) == (2, 4)
        assert {rows[d]["error"]["code"] for d in ("d0", "d1")} == {"GatewayTimeoutError"}
        assert {rows[d]["error"]["code"] for d in ("d4", "d5")} == {"DeviceNotOnline"}

    asyncio.run(main())


def test_max_execution_time_fails_the_job(tmp_path: Path) -> None:
    async def main() -> None:
        hub = _hub(tmp_path, concurrency=1)
        probe = {"inflight": 0, "max": 0, "calls": 0}
        for i in range(3):
            hub.registry.create(f"d{i}")
            hub.sessions.attach(Device(hub, f"d{i}", None, probe))
        hub.jobs.start()
        hub.jobs.create("too-long", _method_body(timeout=30, max_time=1))
        job = await _until_done(hub, "too-long")
        rows = hub.jobs.device_jobs()
        await hub.jobs.stop()
        hub.close()
        assert job["status"] == "failed" and "maxExecutionTimeInSeconds" in job["failureReason"]
        assert job["deviceJobStatistics"]["failedCount"] == 3
        assert probe["calls"] == 1  # one at a time: the others never started
        assert {r["error"]["code"] for r in rows} == {"JobExecutionTimeout"}

    asyncio.run(main())
