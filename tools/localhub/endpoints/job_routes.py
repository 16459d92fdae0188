"""HTTPS routes of jobs v2 (service SAS auth and api-version checked by routing.py's middleware)::

    PUT  /jobs/v2/{id}          create (scheduleDeviceMethod | scheduleUpdateTwin) -> JobResponse
    GET  /jobs/v2/{id}          the job with deviceJobStatistics
    POST /jobs/v2/{id}/cancel   cancel -> JobResponse
    GET  /jobs/v2/query[?jobType=&jobStatus=&pageSize=&continuationToken=]   list

Job query answers: the service answers a JSON array of jobs, with ``x-ms-continuation`` and
``x-ms-item-type: jobResponse`` headers (paging by ``x-ms-max-item-count`` or ``pageSize``).
``azure-iot-hub`` 2.7 for Python deserializes that response as a ``QueryResult`` OBJECT and fails
on an array, so a caller whose User-Agent names its generated client (``msrest`` /
``iothubgatewayserviceapis``) gets ``{"type", "items", "continuationToken"}`` instead, the same
items and headers: that keeps ``IoTHubJobManager.query_scheduled_jobs`` working unchanged.
"""

from __future__ import annotations

from aiohttp import web

from .. import query
from ..protocol.errors import bad_request
from ..protocol.rights import Right
from .routing import HUB_KEY, add_routes, json_body

_OBJECT_CLIENTS = ("msrest", "iothubgatewayserviceapis")


async def create_job(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    job = hub.jobs.create(request.match_info["id"], await json_body(request))
    return web.json_response(job)


async def get_job(request: web.Request) -> web.Response:
    return web.json_response(request.app[HUB_KEY].jobs.get(request.match_info["id"]))


async def cancel_job(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    return web.json_response(await hub.jobs.cancel(request.match_info["id"]))


async def query_jobs(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    jobs = hub.jobs.list(request.query.get("jobType") or None,
                         request.query.get("jobStatus") or None)
    size = request.headers.get("x-ms-max-item-count") or request.query.get("pageSize")
    token = request.headers.get("x-ms-continuation") or request.query.get("continuationToken")
    try:
        chunk, next_token = query.page(jobs, size, token)
    except ValueError as exc:
        raise bad_request(f"bad page size or continuation token: {exc}") from exc
    headers = {"x-ms-item-type": "jobResponse"}
    if next_token:
        headers["x-ms-continuation"] = next_token
    agent = request.headers.get("User-Agent", "").lower()
    if any(name in agent for name in _OBJECT_CLIENTS):
        return web.json_response({"type": "jobResponse", "items": chunk,
                                  "continuationToken": next_token}, headers=headers)
    return web.json_response(chunk, headers=headers)


# Scheduled twin updates and method calls act as the service would: ServiceConnect.
# /jobs/v2/query before /jobs/v2/{id}: aiohttp tries routes in the order they were added.
ROUTES = (
    ("GET", "/jobs/v2/query", query_jobs, Right.SERVICE_CONNECT),
    ("PUT", "/jobs/v2/{id}", create_job, Right.SERVICE_CONNECT),
    ("GET", "/jobs/v2/{id}", get_job, Right.SERVICE_CONNECT),
    ("POST", "/jobs/v2/{id}/cancel", cancel_job, Right.SERVICE_CONNECT),
)


def setup(app: web.Application) -> None:
    add_routes(app, ROUTES)
