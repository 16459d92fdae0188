"""``localhub job create|show|list|cancel`` and ``localhub query``: jobs v2 and the query language
from the command line, through the running hub's REST API (main.py attaches these commands)."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import quote

import click
from rich.table import Table

from ..protocol.twin import iso_now
from .output import console, json_option, print_json


def _job_path(job_id: str) -> str:
    return f"/jobs/v2/{quote(job_id, safe='')}"


@click.group()
def job() -> None:
    """Jobs v2: direct methods and twin updates over a query, now or at a set time."""


@job.command("create")
@click.argument("job_id", required=False)
@click.option("--query", "condition", required=True,
              help="Query condition: the WHERE part, e.g. \"tags.building = 43\".")
@click.option("--method", "method_name", help="Direct method to invoke (a method job).")
@click.option("--payload", help="JSON payload of the method.")
@click.option("--method-timeout", default=30, show_default=True, type=int,
              help="responseTimeoutInSeconds of each device's call.")
@click.option("--connect-timeout", default=0, show_default=True, type=int,
              help="connectTimeoutInSeconds: how long to wait for an offline device.")
@click.option("--desired", help="JSON patch of desired properties (a twin update job).")
@click.option("--tags", help="JSON patch of tags (a twin update job).")
@click.option("--start", "start_time", help="Start time, ISO-8601 (default: now).")
@click.option("--in", "start_in", type=float, help="Start this many seconds from now.")
@click.option("--max-time", default=3600, show_default=True, type=int,
              help="maxExecutionTimeInSeconds.")
@click.option("--wait", is_flag=True, help="Wait until the job ends and print it.")
@click.pass_obj
def job_create(obj: Any, job_id: str | None, condition: str, method_name: str | None,
               payload: str | None, method_timeout: int, connect_timeout: int,
               desired: str | None, tags: str | None, start_time: str | None,
               start_in: float | None, max_time: int, wait: bool) -> None:
    """Schedule a method job (--method) or a twin update job (--desired/--tags)."""
    if bool(method_name) == (desired is not None or tags is not None):
        raise click.UsageError("give either --method or --desired/--tags")
    if start_time and start_in is not None:
        raise click.UsageError("give --start or --in, not both")
    job_id = job_id or f"job-{uuid.uuid4().hex[:12]}"
    body: dict[str, Any] = {"jobId": job_id, "queryCondition": condition,
                            "maxExecutionTimeInSeconds": max_time}
    if method_name:
        body["type"] = "scheduleDeviceMethod"
        body["cloudToDeviceMethod"] = {"methodName": method_name,
                                       "payload": json_option(payload, "--payload"),
                                       "responseTimeoutInSeconds": method_timeout,
                                       "connectTimeoutInSeconds": connect_timeout}
    else:
        update: dict[str, Any] = {}
        if tags is not None:
            update["tags"] = json_option(tags, "--tags")
        if desired is not None:
            update["properties"] = {"desired": json_option(desired, "--desired")}
        body["type"] = "scheduleUpdateTwin"
        body["updateTwin"] = update
    if start_in is not None:
        body["startTime"] = iso_now(time.time() + start_in)
    elif start_time:
        body["startTime"] = start_time
    client = obj.require_client()
    created = client.request("PUT", _job_path(job_id), body)[2]
    if not wait:
        print_json(created)
        return
    while True:
        current = client.request("GET", _job_path(job_id))[2]
        if current["status"] in ("completed", "failed", "cancelled"):
            print_json(current)
            return
        time.sleep(0.5)


@job.command("show")
@click.argument("job_id")
@click.option("--devices", is_flag=True, help="Also print each device's result.")
@click.pass_obj
def job_show(obj: Any, job_id: str, devices: bool) -> None:
    client = obj.require_client()
    data = client.request("GET", _job_path(job_id))[2]
    if devices:
        escaped = job_id.replace("'", "\\'")
        data = {"job": data, "devices": client.query(
            f"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = '{escaped}'")}
    print_json(data)


@job.command("list")
@click.option("--type", "job_type", type=click.Choice(["scheduleDeviceMethod",
                                                      "scheduleUpdateTwin"]))
@click.option("--status", type=click.Choice(["queued", "scheduled", "running", "completed",
                                             "failed", "cancelled"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def job_list(obj: Any, job_type: str | None, status: str | None, as_json: bool) -> None:
    client = obj.require_client()
    params = {k: v for k, v in (("jobType", job_type), ("jobStatus", status)) if v}
    jobs: list[Any] = []
    continuation = None
    while True:
        headers = {"x-ms-continuation": continuation} if continuation else None
        _, resp_headers, page = client.request("GET", "/jobs/v2/query", headers=headers,
                                               params=params)
        jobs.extend(page)
        continuation = resp_headers.get("x-ms-continuation")
        if not continuation:
            break
    if as_json:
        print_json(jobs)
        return
    table = Table("jobId", "type", "status", "start", "devices", "ok", "failed")
    for item in jobs:
        stats = item["deviceJobStatistics"]
        table.add_row(item["jobId"], item["type"], item["status"], item["startTime"],
                      str(stats["deviceCount"]), str(stats["succeededCount"]),
                      str(stats["failedCount"]))
    console.print(table)


@job.command("cancel")
@click.argument("job_id")
@click.pass_obj
def job_cancel(obj: Any, job_id: str) -> None:
    print_json(obj.require_client().request("POST", _job_path(job_id) + "/cancel")[2])


@click.command("query")
@click.argument("sql")
@click.option("--page-size", default=100, show_default=True, type=int)
@click.pass_obj
def query_cmd(obj: Any, sql: str, page_size: int) -> None:
    """Run a query: SELECT ... FROM devices | devices.jobs [WHERE ...] [GROUP BY ...]."""
    print_json(obj.require_client().query(sql, page_size))


COMMANDS = (job, query_cmd)
