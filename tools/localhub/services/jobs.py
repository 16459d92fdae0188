"""Jobs v2: direct methods and twin updates scheduled over a query, as IoT Hub runs them.

REST shape (``PUT /jobs/v2/{id}``, what ``azure-iot-hub``'s ``IoTHubJobManager`` sends)::

    {"jobId", "type": "scheduleDeviceMethod" | "scheduleUpdateTwin",
     "cloudToDeviceMethod": {"methodName", "payload", "responseTimeoutInSeconds",
                             "connectTimeoutInSeconds"},
     "updateTwin": {"tags": {..}, "properties": {"desired": {..}}, "etag": "*"},
     "queryCondition": "<the WHERE part of a devices query>",
     "startTime": ISO-8601 (absent or past: now), "maxExecutionTimeInSeconds": int}

Life of a job: ``queued`` (start time reached, not yet picked up) or ``scheduled`` (start time
ahead) -> ``running`` -> ``completed`` | ``failed`` | ``cancelled``. The query condition is
evaluated when the job starts, over the twins as they are then. Each target device gets a result
row (``pending`` -> ``running`` -> ``completed`` | ``failed`` | ``cancelled``), queryable as
``FROM devices.jobs``. A method job's device is ``completed`` once it answered (whatever status
it answered with, which is in ``outcome.deviceMethodResponse``); a device that is offline
(after ``connectTimeoutInSeconds``, default 0) or does not answer within
``responseTimeoutInSeconds`` is ``failed`` and never waited on longer.

Fan-out: at most ``concurrency`` devices in flight at once (an asyncio semaphore), so a job over
thousands of devices neither floods the event loop nor the devices' connections.

``maxExecutionTimeInSeconds`` counts from the moment the job starts running; when it elapses the
devices not yet done are failed (``JobExecutionTimeout``) and the job ends ``failed``.

``deviceJobStatistics``: ``succeededCount`` counts ``completed`` devices; ``failedCount``
counts ``failed`` and ``cancelled`` ones (the API has no cancelled count); ``runningCount`` the
devices in flight; ``pendingCount`` the rest.

Restart (jobs persist in SQLite, see jobstore.py): scheduled and queued jobs keep their start
time. A job that was ``running`` when the hub stopped or died RESUMES: devices with a final result
keep it, the others run again (so a method whose answer was lost with the hub is invoked a second
time: at-least-once, as on any retried delivery), within what is left of
``maxExecutionTimeInSeconds`` measured from the job's first start.

Cancel (``POST /jobs/v2/{id}/cancel``): a queued, scheduled or running job ends ``cancelled`` and
its unfinished devices ``cancelled``; cancelling a job that already ended returns it unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timezone
from typing import Any, Callable

from .. import query
from ..protocol.errors import HubError, bad_request
from ..protocol.twin import TwinError, iso_now, strip_read_only, validate_section
from ..storage.jobstore import DeviceJobRow, JobRow, JobStore
from .methods import MAX_CONNECT_TIMEOUT, MAX_PAYLOAD, MethodService, check_timeout
from .registry import Registry
from .twins import TwinService

log = logging.getLogger("localhub.jobs")

METHOD_JOB = "scheduleDeviceMethod"
TWIN_JOB = "scheduleUpdateTwin"
# Spellings of the job guide's request samples, accepted and stored under the SDK's names.
TYPE_ALIASES = {"scheduleDirectMethod": METHOD_JOB, "scheduleTwinUpdate": TWIN_JOB,
                METHOD_JOB: METHOD_JOB, TWIN_JOB: TWIN_JOB}
JOB_STATUSES = ("queued", "scheduled", "running", "completed", "failed", "cancelled")
TERMINAL = frozenset({"completed", "failed", "cancelled"})
JOB_ID_RE = re.compile(r"^[A-Za-z0-9\-._:@$'()!*,=%+]{1,128}$")
DEFAULT_MAX_EXECUTION = 3600
MAX_EXECUTION_LIMIT = 7 * 24 * 3600
DEFAULT_CONCURRENCY = 100


def parse_time(value: Any, what: str) -> float:
    """ISO-8601 (``Z``, an offset, or none meaning UTC) to a Unix time; 400 when malformed."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{what} must be an ISO-8601 date-time string")
    text = value.strip()
    # Python takes at most 6 fraction digits; .NET writes 7 ("...:52.7418462Z").
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise bad_request(f"{what} {value[:40]!r} is not an ISO-8601 date-time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _int_field(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad_request(f"{name} must be an integer {low}..{high}")
    return value


def parse_job_request(job_id: str, body: Any, now: float) -> JobRow:
    """Validate a ``PUT /jobs/v2/{id}`` body; return the new job (not yet stored).

    Raises HubError 400 with a message naming the offending field (the query condition's error
    carries its position).
    """
    if not JOB_ID_RE.match(job_id):
        raise bad_request(f"invalid job id {job_id[:64]!r}")
    if not isinstance(body, dict):
        raise bad_request("job request must be a JSON object")
    if body.get("jobId") not in (None, job_id):
        raise bad_request("jobId in the body does not match the URL")
    raw_type = body.get("type")
    job_type = TYPE_ALIASES.get(raw_type) if isinstance(raw_type, str) else None
    if job_type is None:
        raise bad_request(f"type must be {METHOD_JOB} or {TWIN_JOB} (got {raw_type!r}); "
                          "import/export jobs are not offered by the local hub")
    condition = body.get("queryCondition")
    try:
        query.parse_condition(condition)
    except query.QueryError as exc:
        raise bad_request(f"queryCondition: {exc}", "SqlQueryInvalid") from exc
    start = now if body.get("startTime") is None else parse_time(body["startTime"], "startTime")
    max_execution = _int_field(body, "maxExecutionTimeInSeconds", DEFAULT_MAX_EXECUTION, 1,
                               MAX_EXECUTION_LIMIT)
    if job_type == METHOD_JOB:
        spec = {"cloudToDeviceMethod": _method_spec(body.get("cloudToDeviceMethod"))}
    else:
        spec = {"updateTwin": _twin_spec(body.get("updateTwin"))}
    # A start time in the past means "now" (the job is queued at once).
    status = "scheduled" if start > now else "queued"
    return JobRow(job_id, job_type, status, condition, now, max(start, now), None, None,
                  max_execution, spec)


def _method_spec(method: Any) -> dict[str, Any]:
    if not isinstance(method, dict):
        raise bad_request("cloudToDeviceMethod (an object with methodName) is required for "
                          f"{METHOD_JOB}")
    name = method.get("methodName")
    if not isinstance(name, str) or not name or len(name) > 128 or "/" in name:
        raise bad_request("cloudToDeviceMethod.methodName must be a non-empty name without '/'")
    payload = method.get("payload")
    if len(json.dumps(payload, separators=(",", ":")).encode()) > MAX_PAYLOAD:
        raise HubError(413, "MessageTooLarge", "method payload exceeds 128 KB")
    try:
        timeout = check_timeout(method.get("responseTimeoutInSeconds"))
    except HubError as exc:
        raise bad_request(f"cloudToDeviceMethod.{exc.message}") from exc
    connect = _int_field(method, "connectTimeoutInSeconds", 0, 0, MAX_CONNECT_TIMEOUT)
    return {"methodName": name, "payload": payload, "responseTimeoutInSeconds": timeout,
            "connectTimeoutInSeconds": connect}


def _twin_spec(update: Any) -> dict[str, Any]:
    if not isinstance(update, dict):
        raise bad_request(f"updateTwin (an object with tags and/or properties.desired) is "
                          f"required for {TWIN_JOB}")
    props = update.get("properties") or {}
    if not isinstance(props, dict):
        raise bad_request("updateTwin.properties must be an object")
    if props.get("reported"):
        raise bad_request("updateTwin cannot write reported properties (only the device can)")
    tags, desired = update.get("tags"), props.get("desired")
    if tags is None and desired is None:
        raise bad_request("updateTwin needs tags and/or properties.desired")
    spec: dict[str, Any] = {}
    try:
        if tags is not None:
            spec["tags"] = validate_section(strip_read_only(tags), patch=True)
        if desired is not None:
            spec["properties"] = {"desired": validate_section(strip_read_only(desired),
                                                              patch=True)}
    except TwinError as exc:
        raise bad_request(f"updateTwin: {exc}") from exc
    etag = update.get("etag")
    if isinstance(etag, str) and etag.strip('"') not in ("", "*"):
        spec["etag"] = etag
    return spec


def _iso(t: float | None) -> str | None:
    return None if t is None else iso_now(t)


class _Active:
    """In-memory state of one job the hub is waiting for or running."""

    def __init__(self, job: JobRow) -> None:
        self.job = job
        self.task: asyncio.Task[None] | None = None
        self.running: set[str] = set()
        self.cancel_requested = False


class JobService:
    def __init__(self, store: JobStore, registry: Registry, twins: TwinService,
                 methods: MethodService, clock: Callable[[], float],
                 concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.registry = registry
        self.twins = twins
        self.methods = methods
        self.clock = clock
        self.concurrency = max(1, concurrency)
        self.store = store
        self._active: dict[str, _Active] = {}
        self._stopping = False
        self._started = False

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Pick up the stored jobs that have not ended (call from the running event loop)."""
        self._started = True
        self._stopping = False
        for job in self.store.active_jobs():
            if job.status == "running":
                log.info("job %s was running when the hub stopped: resuming", job.job_id)
            self._launch(job)

    async def stop(self) -> None:
        """Stop running jobs WITHOUT ending them: they resume at the next start."""
        self._stopping = True
        tasks = [a.task for a in self._active.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._active.clear()

    def _launch(self, job: JobRow) -> None:
        active = _Active(job)
        self._active[job.job_id] = active
        active.task = asyncio.get_running_loop().create_task(self._run(active),
                                                             name=f"job-{job.job_id}")

    # --- service operations ----------------------------------------------------------------
    def create(self, job_id: str, body: Any) -> dict[str, Any]:
        job = parse_job_request(job_id, body, self.clock())
        if not self.store.insert_job(job):
            raise HubError(409, "JobAlreadyExists", f"a job with id {job_id!r} already exists")
        if self._started:
            self._launch(job)
        return self.job_json(job)

    def require(self, job_id: str) -> JobRow:
        active = self._active.get(job_id)
        if active is not None:
            return active.job
        job = self.store.get_job(job_id)
        if job is None:
            raise HubError(404, "JobNotFound", f"job {job_id!r} not found")
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        return self.job_json(self.require(job_id))

    async def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.require(job_id)
        active = self._active.get(job_id)
        if job.status in TERMINAL or active is None:
            return self.job_json(job)
        active.cancel_requested = True
        if active.task is not None and not active.task.done():
            active.task.cancel()
            await asyncio.wait([active.task], timeout=10)
        return self.job_json(self.require(job_id))

    def list(self, job_type: str | None = None, status: str | None = None
             ) -> list[dict[str, Any]]:
        if job_type is not None:
            job_type = TYPE_ALIASES.get(job_type, job_type)
            if job_type not in (METHOD_JOB, TWIN_JOB):
                raise bad_request(f"jobType must be {METHOD_JOB} or {TWIN_JOB}")
        if status is not None and status not in JOB_STATUSES:
            raise bad_request(f"jobStatus must be one of {', '.join(JOB_STATUSES)}")
        jobs = []
        for row in self.store.list_jobs(job_type, status):
            active = self._active.get(row.job_id)
            jobs.append(self.job_json(active.job if active else row))
        return jobs

    def device_jobs(self) -> list[dict[str, Any]]:
        """Documents of the ``devices.jobs`` collection (one per job and target device)."""
        types = {j.job_id: j.type for j in self.store.list_jobs()}
        out = []
        for row in self.store.all_device_jobs():
            active = self._active.get(row.job_id)
            status = "running" if active and row.device_id in active.running else row.status
            out.append(self.device_job_json(row, types.get(row.job_id, ""), status))
        return out

    # --- JSON views --------------------------------------------------------------------------
    def statistics(self, job: JobRow) -> dict[str, int]:
        counts = self.store.counts(job.job_id)
        active = self._active.get(job.job_id)
        running = len(active.running) if active else 0
        total = sum(counts.values())
        succeeded = counts.get("completed", 0)
        failed = counts.get("failed", 0) + counts.get("cancelled", 0)
        return {"deviceCount": total, "failedCount": failed, "succeededCount": succeeded,
                "runningCount": running, "pendingCount": total - succeeded - failed - running}

    def job_json(self, job: JobRow) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobId": job.job_id, "type": job.type, "status": job.status,
            "queryCondition": job.query_condition, "createdTime": _iso(job.created),
            "startTime": _iso(job.start), "maxExecutionTimeInSeconds": job.max_execution,
            "deviceJobStatistics": self.statistics(job),
        }
        if job.ended is not None:
            out["endTime"] = _iso(job.ended)
        out.update(job.spec)
        if job.failure_reason:
            out["failureReason"] = job.failure_reason
        if job.status_message:
            out["statusMessage"] = job.status_message
        return out

    @staticmethod
    def device_job_json(row: DeviceJobRow, job_type: str, status: str | None = None
                        ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "deviceId": row.device_id, "jobId": row.job_id, "jobType": job_type,
            "status": status or row.status,
            "startTimeUtc": _iso(row.started), "endTimeUtc": _iso(row.ended),
            "createdDateTimeUtc": _iso(row.created), "createdTimeUtc": _iso(row.created),
            "lastUpdatedDateTimeUtc": _iso(row.updated),
        }
        if row.outcome is not None:
            out["outcome"] = row.outcome
        elif job_type == METHOD_JOB:
            out["outcome"] = {"deviceMethodResponse": None}
        if row.error is not None:
            out["error"] = row.error
        return out

    # --- running -----------------------------------------------------------------------------
    def _save(self, job: JobRow) -> None:
        self.store.save_job(job)

    async def _run(self, active: _Active) -> None:
        job = active.job
        try:
            delay = job.start - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._execute(active)
        except asyncio.CancelledError:
            if self._stopping and not active.cancel_requested:
                return  # hub shutting down: the job stays as stored and resumes on restart
            self._end(active, "cancelled", None, "job cancelled",
                      {"code": "JobCancelled", "description": "the job was cancelled"},
                      "cancelled")
        except Exception as exc:  # a bug in one job must not take the hub or other jobs down
            log.exception("job %s failed", job.job_id)
            self._end(active, "failed", f"internal error: {exc}", None,
                      {"code": "ServerError", "description": "internal error"}, "failed")
        finally:
            if not self._stopping:
                self._active.pop(job.job_id, None)

    def _end(self, active: _Active, status: str, reason: str | None, message: str | None,
             device_error: dict[str, Any], device_status: str) -> None:
        job = active.job
        now = self.clock()
        active.running.clear()
        self.store.finish_remaining(job.job_id, device_status, device_error, now)
        job.status = status
        job.ended = now
        job.failure_reason = reason
        job.status_message = message
        self._save(job)

    async def _execute(self, active: _Active) -> None:
        job = active.job
        now = self.clock()
        if job.status != "running":
            condition = query.parse_condition(job.query_condition)
            targets = [d.device_id for d in self.registry.list()
                       if query.matches(condition, self.twins.service_json(d))]
            job.status = "running"
            job.run_started = now
            self.store.add_devices(job.job_id, targets, now)
            self._save(job)
        deadline = (job.run_started or now) + job.max_execution
        todo = [r.device_id for r in self.store.devices_of(job.job_id, ("pending", "running"))]
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(device_id: str) -> None:
            async with semaphore:
                await self._device(active, device_id)

        remaining = deadline - self.clock()
        tasks = [asyncio.ensure_future(one(d)) for d in todo]
        try:
            if tasks and remaining > 0:
                _done, pending = await asyncio.wait(tasks, timeout=remaining)
            else:
                pending = set(tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        if pending:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._end(active, "failed",
                      f"maxExecutionTimeInSeconds ({job.max_execution} s) elapsed before every "
                      "device was done", None,
                      {"code": "JobExecutionTimeout",
                       "description": "the job's maxExecutionTimeInSeconds elapsed"}, "failed")
            return
        job.status = "completed"
        job.ended = self.clock()
        self._save(job)

    async def _device(self, active: _Active, device_id: str) -> None:
        job = active.job
        started = self.clock()
        active.running.add(device_id)
        row = DeviceJobRow(job.job_id, device_id, "running", started, started, started)
        try:
            if job.type == METHOD_JOB:
                row.outcome = {"deviceMethodResponse": await self._invoke(job, device_id)}
            else:
                self._update_twin(job, device_id)
                await asyncio.sleep(0)  # twin writes are synchronous: let others run between
            row.status = "completed"
        except HubError as exc:
            row.status = "failed"
            row.error = {"code": exc.code, "description": exc.message}
        finally:
            active.running.discard(device_id)
        row.ended = row.updated = self.clock()
        self.store.finish_device(row)

    async def _invoke(self, job: JobRow, device_id: str) -> dict[str, Any]:
        spec = job.spec["cloudToDeviceMethod"]
        return await self.methods.invoke(device_id, spec["methodName"], spec.get("payload"),
                                             spec["responseTimeoutInSeconds"],
                                             spec.get("connectTimeoutInSeconds", 0))

    def _update_twin(self, job: JobRow, device_id: str) -> None:
        spec = dict(job.spec["updateTwin"])
        etag = spec.pop("etag", None)
        self.twins.update(device_id, spec, etag)
