"""HTTPS routes (aiohttp): IoT Hub's service REST API, plus the hub's own ``/localhub/`` routes.

Service API (what ``azure-iot-hub`` 2.7 calls, api-version 2021-04-12; auth by a service SAS of
a shared access policy in ``Authorization`` that grants the right :data:`ROUTES` gives the route)::

    GET    /devices[?top=n]                 list identities
    GET    /devices/{id}                    identity
    PUT    /devices/{id}                    create; update with If-Match
    DELETE /devices/{id}                    delete (If-Match optional)
    DELETE /devices/{id}/commands           purge pending C2D
    GET    /twins/{id}                      twin
    PATCH  /twins/{id}                      merge tags / desired (If-Match optional, "*" ok)
    PUT    /twins/{id}                      replace tags / desired
    POST   /twins/{id}/methods              invoke a direct method
    GET    /devices/{id}/modules            the device's module identities
    GET|PUT|DELETE /devices/{id}/modules/{mid}            a module identity (PUT: as for devices)
    GET|PATCH|PUT  /twins/{id}/modules/{mid}[/methods]    its twin; POST .../methods invokes
    POST   /devices/query                   query (x-ms-max-item-count, x-ms-continuation)
    GET    /statistics/devices | /statistics/service

What real IoT Hub does over AMQP, the local hub offers here (same SAS auth)::

    POST /localhub/devices/{id}/messages/devicebound
         {"body": str | "bodyBase64": str, "properties": {..}, "messageId": str, "ttlSeconds": int}
         -> {"messageId": ...}
    GET  /localhub/telemetry?after=<seq>&deviceId=<id>&limit=<n>&wait=<s>
         -> {"messages": [{seq, deviceId, enqueuedTime, body, bodyBase64, properties,
                           systemProperties}], "last": <highest seq returned or `after`>}
    GET  /localhub/info   (no auth) -> host name, ports, connected device count
    GET  /localhub/ca.pem (no auth) -> the CA certificate a client must trust

Errors use IoT Hub's body ``{"Message": "ErrorCode:<code>;<text>", "ExceptionMessage": ...}``
and ``iothub-errorcode`` header. A bad request never takes the server down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from .. import query
from ..protocol.errors import bad_request
from ..protocol.rights import Right
from ..services import bulk
from ..services.c2d import decode_body
from ..services.hub import Hub
from ..services.methods import check_connect_timeout, check_timeout
from ..services.registry import etag_of
from ..services.telemetry import row_json
from ..storage.store import module_identity
from . import job_routes
from .routing import (
    HUB_KEY,
    INFO_KEY,
    PUBLIC,
    add_routes,
    auth_middleware,
    error_middleware,
    json_body,
    json_object,
)


def _etag_header(etag: str) -> dict[str, str]:
    return {"ETag": f'"{etag}"'}


# --- registry ---------------------------------------------------------------------------------
async def list_devices(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    top = request.query.get("top")
    try:
        limit = int(top) if top else None
    except ValueError as exc:
        raise bad_request("top must be an integer") from exc
    return web.json_response([hub.registry.device_json(d) for d in hub.registry.list(limit)])


async def get_device(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    dev = hub.registry.require(request.match_info["id"])
    return web.json_response(hub.registry.device_json(dev),
                             headers=_etag_header(etag_of(dev.etag_counter)))


async def put_device(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    dev = hub.registry.put(request.match_info["id"], await json_object(request),
                           request.headers.get("If-Match"))
    return web.json_response(hub.registry.device_json(dev),
                             headers=_etag_header(etag_of(dev.etag_counter)))


async def bulk_devices(request: web.Request) -> web.Response:
    status, result = bulk.apply(request.app[HUB_KEY], await json_body(request))
    return web.json_response(result, status=status)


async def delete_device(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    hub.registry.delete(request.match_info["id"], request.headers.get("If-Match"))
    return web.Response(status=204)


async def purge_commands(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    device_id = request.match_info["id"]
    count = hub.c2d.purge(device_id)
    return web.json_response({"totalMessagesPurged": count, "deviceId": device_id,
                              "moduleId": None})


async def device_statistics(request: web.Request) -> web.Response:
    devices = request.app[HUB_KEY].registry.list()
    enabled = sum(1 for d in devices if d.status == "enabled")
    return web.json_response({"totalDeviceCount": len(devices), "enabledDeviceCount": enabled,
                              "disabledDeviceCount": len(devices) - enabled})


async def service_statistics(request: web.Request) -> web.Response:
    return web.json_response({"connectedDeviceCount": request.app[HUB_KEY].sessions.count()})


# --- modules ---------------------------------------------------------------------------------
async def list_modules(request: web.Request) -> web.Response:
    registry = request.app[HUB_KEY].registry
    return web.json_response([registry.module_json(m)
                              for m in registry.list_modules(request.match_info["id"])])


async def get_module(request: web.Request) -> web.Response:
    registry = request.app[HUB_KEY].registry
    mod = registry.require_module(request.match_info["id"], request.match_info["mid"])
    return web.json_response(registry.module_json(mod),
                             headers=_etag_header(etag_of(mod.etag_counter)))


async def put_module(request: web.Request) -> web.Response:
    registry = request.app[HUB_KEY].registry
    mod = registry.put_module(request.match_info["id"], request.match_info["mid"],
                              await json_object(request), request.headers.get("If-Match"))
    return web.json_response(registry.module_json(mod),
                             headers=_etag_header(etag_of(mod.etag_counter)))


async def delete_module(request: web.Request) -> web.Response:
    request.app[HUB_KEY].registry.delete_module(request.match_info["id"], request.match_info["mid"],
                                                request.headers.get("If-Match"))
    return web.Response(status=204)


# --- twins and methods (of a device, or of a module: /twins/{id}/modules/{mid}) ----------------
def _identity(request: web.Request) -> str:
    device_id = request.match_info["id"]
    module_id = request.match_info.get("mid")
    return module_identity(device_id, module_id) if module_id else device_id


async def get_twin(request: web.Request) -> web.Response:
    twin = request.app[HUB_KEY].twins.get(_identity(request))
    return web.json_response(twin, headers=_etag_header(twin["etag"]))


async def patch_twin(request: web.Request, replace: bool = False) -> web.Response:
    hub = request.app[HUB_KEY]
    twin = hub.twins.update(_identity(request), await json_object(request),
                            request.headers.get("If-Match"), replace=replace)
    return web.json_response(twin, headers=_etag_header(twin["etag"]))


async def put_twin(request: web.Request) -> web.Response:
    return await patch_twin(request, replace=True)


async def invoke_method(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body = await json_object(request)
    timeout = check_timeout(body.get("responseTimeoutInSeconds"))
    connect = check_connect_timeout(body.get("connectTimeoutInSeconds"))
    identity = _identity(request)
    hub.registry.require_identity(identity)
    result = await hub.methods.invoke(identity, body.get("methodName"),
                                      body.get("payload"), timeout, connect)
    return web.json_response(result)


async def run_query(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body = await json_object(request)
    parsed = query.parse(body.get("query", ""))
    if parsed.collection == "devices.jobs":
        docs = hub.jobs.device_jobs()
    else:
        docs = [hub.twins.service_json(d) for d in hub.registry.list()]
    item_type, rows = query.run(parsed, docs)
    try:
        chunk, token = query.page(rows, request.headers.get("x-ms-max-item-count"),
                                  request.headers.get("x-ms-continuation"))
    except ValueError as exc:
        raise bad_request("bad x-ms-max-item-count or x-ms-continuation") from exc
    headers = {"x-ms-item-type": item_type}
    if token:
        headers["x-ms-continuation"] = token
    return web.json_response(chunk, headers=headers)


# --- the hub's own routes ---------------------------------------------------------------------
async def send_c2d(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body = await json_object(request)
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise bad_request("properties must be an object")
    payload = decode_body(body.get("body"), body.get("bodyBase64"))
    message_id = hub.c2d.send(request.match_info["id"], payload, props, body.get("messageId"),
                              body.get("ttlSeconds"))
    return web.json_response({"messageId": message_id})


async def read_telemetry(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    try:
        after = int(request.query.get("after", "0"))
        limit = max(1, min(int(request.query.get("limit", "500")), 5000))
        wait = max(0.0, min(float(request.query.get("wait", "0")), 60.0))
    except ValueError as exc:
        raise bad_request("after, limit and wait must be numbers") from exc
    if after < 0:
        after = hub.store.last_telemetry_seq()  # "from now on"
    rows = await hub.telemetry.read(after, request.query.get("deviceId"), limit, wait)
    return web.json_response({"messages": [row_json(r) for r in rows],
                              "last": rows[-1].seq if rows else after})


async def info(request: web.Request) -> web.Response:
    data = dict(request.app[INFO_KEY])
    data["connectedDevices"] = request.app[HUB_KEY].sessions.count()
    return web.json_response(data)


async def ca_pem(request: web.Request) -> web.Response:
    path = Path(request.app[INFO_KEY]["caPath"])
    return web.Response(body=path.read_bytes(), content_type="application/x-pem-file")


READ, WRITE, SERVICE = Right.REGISTRY_READ, Right.REGISTRY_WRITE, Right.SERVICE_CONNECT
# (method, path, handler, the right it needs), per "Control access to IoT Hub": the registry
# takes RegistryRead / RegistryWrite; twins, methods, queries, C2D and telemetry ServiceConnect.
ROUTES = (
    ("GET", "/devices", list_devices, READ),
    ("POST", "/devices", bulk_devices, WRITE),
    ("POST", "/devices/query", run_query, SERVICE),
    ("GET", "/devices/{id}", get_device, READ),
    ("PUT", "/devices/{id}", put_device, WRITE),
    ("DELETE", "/devices/{id}", delete_device, WRITE),
    ("DELETE", "/devices/{id}/commands", purge_commands, SERVICE),
    ("GET", "/twins/{id}", get_twin, SERVICE),
    ("PATCH", "/twins/{id}", patch_twin, SERVICE),
    ("PUT", "/twins/{id}", put_twin, SERVICE),
    ("POST", "/twins/{id}/methods", invoke_method, SERVICE),
    ("GET", "/devices/{id}/modules", list_modules, READ),
    ("GET", "/devices/{id}/modules/{mid}", get_module, READ),
    ("PUT", "/devices/{id}/modules/{mid}", put_module, WRITE),
    ("DELETE", "/devices/{id}/modules/{mid}", delete_module, WRITE),
    ("GET", "/twins/{id}/modules/{mid}", get_twin, SERVICE),
    ("PATCH", "/twins/{id}/modules/{mid}", patch_twin, SERVICE),
    ("PUT", "/twins/{id}/modules/{mid}", put_twin, SERVICE),
    ("POST", "/twins/{id}/modules/{mid}/methods", invoke_method, SERVICE),
    ("GET", "/statistics/devices", device_statistics, READ),
    ("GET", "/statistics/service", service_statistics, SERVICE),
    ("POST", "/localhub/devices/{id}/messages/devicebound", send_c2d, SERVICE),
    ("GET", "/localhub/telemetry", read_telemetry, SERVICE),
    ("GET", "/localhub/info", info, PUBLIC),
    ("GET", "/localhub/ca.pem", ca_pem, PUBLIC),
)


def make_app(hub: Hub, info_data: dict[str, Any]) -> web.Application:
    # 512 KB bodies: twins and method payloads are far smaller; anything bigger is refused (413).
    app = web.Application(middlewares=[error_middleware, auth_middleware],
                          client_max_size=512 * 1024)
    app[HUB_KEY] = hub
    app[INFO_KEY] = info_data
    add_routes(app, ROUTES)
    job_routes.setup(app)
    # File upload (/devices/{id}/files, device SAS auth): upload_routes.setup(), from server.py.
    return app
