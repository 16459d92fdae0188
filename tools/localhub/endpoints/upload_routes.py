"""HTTPS routes of file upload (aiohttp), added to the app of rest.py by :func:`setup`.

Device endpoints (api-version 2019-10-01 / 2021-04-12; ``Authorization`` holds the DEVICE's SAS
token, checked as MQTT checks it: ``sr={host}/devices/{id}``, primary or secondary key)::

    POST /devices/{id}/files                        {"blobName": str}
         -> 200 {correlationId, hostName, containerName, blobName, sasToken}
    POST /devices/{id}/files/notifications          {correlationId, isSuccess, statusCode,
                                                     statusDescription} -> 204
    POST /devices/{id}/files/notifications/{cid}    same, correlation id in the path (older SDKs)

The hub's own routes (service SAS, like every ``/localhub/`` route)::

    GET /localhub/uploads/notifications?after=<seq>&deviceId=<id>&limit=<n>&wait=<s>
        -> {"notifications": [{seq, deviceId, blobUri, blobName, lastUpdatedTime, blobSizeInBytes,
                               enqueuedTimeUtc, correlationId, isSuccess, statusCode,
                               statusDescription}], "last": <seq>}   (after=-1: from now on)
    GET /localhub/storage -> {connectionString, accountName, blobEndpoint, container, hostName,
                              containerName}   (starts Azurite if it is not running yet)

Device routes are added as DEVICE: routing.py's service-SAS middleware lets them through and
they authenticate the device here (its own key, or a policy granting DeviceConnect). The hub's
own routes need ServiceConnect. Errors are HubErrors, rendered by routing.py's middleware.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..protocol import auth
from ..protocol.errors import HubError, bad_request
from ..protocol.rights import Right
from ..services.hub import DEVICE_API_VERSIONS
from ..services.uploads import UploadService
from .routing import DEVICE, HUB_KEY, add_routes, read_body, vouch

UPLOADS_KEY: web.AppKey[UploadService] = web.AppKey("uploads", UploadService)
MAX_DEVICE_BODY = 16 * 1024  # a blob name or a notification: small


def authenticate_device(request: web.Request) -> str:
    """Check the device SAS in ``Authorization`` and the api-version; return the device id."""
    hub = request.app[HUB_KEY]
    device_id = request.match_info["id"]
    if request.query.get("api-version") not in DEVICE_API_VERSIONS:
        raise bad_request("missing or unsupported api-version", "InvalidProtocolVersion")
    dev = hub.store.get_device(device_id)
    if dev is None or dev.status != "enabled":
        raise HubError(401, "IotHubUnauthorizedAccess", "Unauthorized: device unknown or disabled")
    try:
        auth.verify_device_token(request.headers.get("Authorization", ""), device_id,
                                 [dev.primary_key, dev.secondary_key], hub.names, hub.clock(),
                                 hub.policies)
    except auth.AuthError as exc:
        raise HubError(401, "IotHubUnauthorizedAccess", f"Unauthorized: {exc}") from exc
    vouch(request)
    return device_id


async def _device_json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_DEVICE_BODY:
        raise HubError(413, "MessageTooLarge", "request body too large")
    raw = await read_body(request)
    if len(raw) > MAX_DEVICE_BODY:
        raise HubError(413, "MessageTooLarge", "request body too large")
    try:
        body = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


async def create_upload(request: web.Request) -> web.Response:
    device_id = authenticate_device(request)
    body = await _device_json(request)
    answer = await request.app[UPLOADS_KEY].create(device_id, body.get("blobName"))
    return web.json_response(answer)


async def notify_upload(request: web.Request) -> web.Response:
    device_id = authenticate_device(request)
    body = await _device_json(request)
    await request.app[UPLOADS_KEY].complete(device_id, body, request.match_info.get("cid"))
    return web.Response(status=204)


async def read_notifications(request: web.Request) -> web.Response:
    try:
        after = int(request.query.get("after", "0"))
        limit = max(1, min(int(request.query.get("limit", "500")), 5000))
        wait = max(0.0, min(float(request.query.get("wait", "0")), 60.0))
    except ValueError as exc:
        raise bad_request("after, limit and wait must be numbers") from exc
    rows, last = await request.app[UPLOADS_KEY].read(after, request.query.get("deviceId"), limit,
                                                     wait)
    return web.json_response({"notifications": [n.to_json() for n in rows], "last": last})


async def storage_info(request: web.Request) -> web.Response:
    return web.json_response(await request.app[UPLOADS_KEY].storage_info())


ROUTES = (
    ("POST", "/devices/{id}/files", create_upload, DEVICE),
    ("POST", "/devices/{id}/files/notifications", notify_upload, DEVICE),
    ("POST", "/devices/{id}/files/notifications/{cid}", notify_upload, DEVICE),
    ("GET", "/localhub/uploads/notifications", read_notifications, Right.SERVICE_CONNECT),
    ("GET", "/localhub/storage", storage_info, Right.SERVICE_CONNECT),
)


def setup(app: web.Application, uploads: UploadService) -> None:
    """Add the file-upload routes; call before the app starts. The caller closes ``uploads``."""
    app[UPLOADS_KEY] = uploads
    add_routes(app, ROUTES)
