"""DPS over HTTPS, on the hub's HTTPS port: the register and operation-status routes of the
Device Provisioning Service's device API (api-version 2019-03-31), for devices and SDKs that
provision over HTTP. The same service as over MQTT (services/dps.py, endpoints/mqtt_dps.py):

- ``PUT /{idScope}/registrations/{registrationId}/register`` with ``{"registrationId", "payload"}``
  -> 202 ``{"operationId", "status": "assigning"}`` (and ``Retry-After``);
- ``GET /{idScope}/registrations/{registrationId}/operations/{operationId}`` -> 202 while
  assigning, then 200 with the registration state.

``Authorization`` holds the registration's SAS (``sr={idScope}/registrations/{registrationId}``).
Errors are DPS's JSON: ``{"errorCode", "trackingId", "message"}``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from ..services.dps import API_VERSION, RETRY_AFTER, DpsService, RegistrationRefused
from .routing import DEVICE, add_routes, read_body, vouch

DPS_KEY: web.AppKey[DpsService] = web.AppKey("dps", DpsService)
MAX_BODY = 16 * 1024
_BASE = "/{scope:0ne[0-9A-Fa-f]+}/registrations/{rid}"


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"errorCode": code, "trackingId": str(uuid.uuid4()), "message": message},
                             status=status)


def _authenticate(request: web.Request) -> tuple[str, str] | web.Response:
    if request.query.get("api-version") != API_VERSION:
        return _error(400, 400001, f"api-version must be {API_VERSION}")
    scope, rid = request.match_info["scope"], request.match_info["rid"]
    try:
        who = request.app[DPS_KEY].authenticate(
            rid, f"{scope}/registrations/{rid}/api-version={API_VERSION}",
            request.headers.get("Authorization", "").encode("utf-8"))
    except RegistrationRefused as exc:
        return _error(401, 401002, f"Unauthorized: {exc}")
    vouch(request)
    return who


async def register(request: web.Request) -> web.Response:
    who = _authenticate(request)
    if isinstance(who, web.Response):
        return who
    raw = await read_body(request)
    if len(raw) > MAX_BODY:
        return _error(413, 413001, "request body too large")
    try:
        body: Any = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        return _error(400, 400004, "malformed JSON")
    if not isinstance(body, dict) or body.get("registrationId", who[0]) != who[0]:
        return _error(400, 400004, "registrationId must be the one in the path")
    try:
        answer = request.app[DPS_KEY].register(who[0], who[1], body.get("payload"))
    except RegistrationRefused as exc:
        return _error(401, 401002, str(exc))
    return web.json_response(answer, status=202, headers={"Retry-After": str(RETRY_AFTER)})


async def operation_status(request: web.Request) -> web.Response:
    who = _authenticate(request)
    if isinstance(who, web.Response):
        return who
    status, answer = request.app[DPS_KEY].operation_status(who[0], request.match_info["operation"])
    headers = {"Retry-After": str(RETRY_AFTER)} if status == 202 else {}
    return web.json_response(answer, status=status, headers=headers)


# DEVICE: the handlers check the registration's SAS themselves
ROUTES = [("PUT", _BASE + "/register", register, DEVICE),
          ("GET", _BASE + "/operations/{operation}", operation_status, DEVICE)]


def setup(app: web.Application, dps: DpsService) -> None:
    app[DPS_KEY] = dps
    add_routes(app, ROUTES)
