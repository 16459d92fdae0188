"""What every HTTPS route shares: the app's keys, IoT Hub's error form, and access control.

Each route is added with :func:`add_route` and the access it needs: a right from rights.py (a
service token whose policy grants it, scoped to cover the path), :data:`PUBLIC`, or
:data:`DEVICE` (the handler checks a device token itself). A route added any other way is
refused to everyone, so a new route cannot be left open by forgetting its right.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, Final, Iterable, Literal

from aiohttp import web

from .. import query
from ..protocol import auth
from ..protocol.errors import HubError, bad_request
from ..protocol.rights import Right
from ..protocol.twin import TwinError
from ..services.hub import Hub
from .https_gate import BODY_TIMEOUT, ConnectionGate

log = logging.getLogger("localhub.rest")

SERVICE_API_VERSIONS = frozenset({"2018-06-30", "2019-10-01", "2020-03-13", "2020-09-30",
                                  "2021-04-12"})
PUBLIC: Final = "public"
DEVICE: Final = "device"
Access = Right | Literal["public", "device"]

HUB_KEY: web.AppKey[Hub] = web.AppKey("hub", Hub)
INFO_KEY: web.AppKey[dict[str, Any]] = web.AppKey("info", dict)
ACCESS_KEY: web.AppKey[dict[web.AbstractRoute, Access]] = web.AppKey("access", dict)
GATE_KEY: web.AppKey[ConnectionGate] = web.AppKey("gate", ConnectionGate)
# The hub's own routes stand in for what IoT Hub offers over AMQP; a token scoped to a device
# opens them as it would the AMQP link (/localhub/devices/d1/... is /devices/d1/...).
LOCALHUB_PREFIX = "/localhub"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_route(app: web.Application, method: str, path: str, handler: Handler,
              access: Access) -> None:
    route = app.router.add_route(method, path, handler)
    app.setdefault(ACCESS_KEY, {})[route] = access


def add_routes(app: web.Application, routes: Iterable[tuple[str, str, Handler, Access]]) -> None:
    for method, path, handler, access in routes:
        add_route(app, method, path, handler, access)


def error_response(exc: HubError) -> web.Response:
    body = {"Message": f"ErrorCode:{exc.code};{exc.message}",
            "ExceptionMessage": f"localhub: {exc.message}"}
    return web.json_response(body, status=exc.status, headers={"iothub-errorcode": exc.code})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HubError as exc:
        response = error_response(exc)
        if exc.status == 408:  # the rest of a stalled body must not be read as a next request
            response.force_close()
        return response
    except TwinError as exc:
        return error_response(HubError(exc.status, "ArgumentInvalid", str(exc)))
    except query.QueryError as exc:
        return error_response(HubError(400, "SqlQueryInvalid", str(exc)))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own refusals (no such route, wrong method, body too large) in IoT Hub's
        # JSON error form, as every other answer, so an SDK can parse them.
        code = {404: "NotFound", 405: "MethodNotAllowed", 413: "MessageTooLarge"}.get(exc.status, "BadRequest")
        what = f"{request.method} {request.path} is not offered by the local hub" if exc.status in (404, 405) \
            else exc.reason
        return error_response(HubError(exc.status, code, what))
    except Exception:  # one broken request must not take the server down
        log.exception("request %s %s failed", request.method, request.path)
        return error_response(HubError(500, "ServerError", "internal error"))


def _access_of(request: web.Request) -> Access | None:
    if request.match_info.http_exception is not None:
        # No such route or method: any valid token learns that (404/405), as from IoT Hub.
        return Right.NONE
    return request.app.get(ACCESS_KEY, {}).get(request.match_info.route)


def resource_path(path: str) -> str:
    """The IoT Hub resource a request path stands for, which a token's scope must cover."""
    if path == LOCALHUB_PREFIX or path.startswith(LOCALHUB_PREFIX + "/"):
        return path[len(LOCALHUB_PREFIX):]
    return path


def vouch(request: web.Request) -> None:
    """The request carried a valid token: its connection no longer counts against the cap of
    connections nobody has authenticated on (https_gate.py)."""
    gate = request.app.get(GATE_KEY)
    if gate is not None:
        gate.vouch(request.transport)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    gate = request.app.get(GATE_KEY)
    if gate is not None:
        gate.head_received(request.transport)
    access = _access_of(request)
    if access == PUBLIC or access == DEVICE:
        return await handler(request)
    if not isinstance(access, Right):
        raise HubError(401, "IotHubUnauthorizedAccess", "Unauthorized: no right opens this route")
    hub = request.app[HUB_KEY]
    try:
        auth.verify_service_token(request.headers.get("Authorization", ""), hub.policies,
                                  hub.names, hub.clock(), access, resource_path(request.path))
    except auth.AuthError as exc:
        raise HubError(401, "IotHubUnauthorizedAccess", f"Unauthorized: {exc}") from exc
    vouch(request)
    if not request.path.startswith(LOCALHUB_PREFIX + "/"):
        version = request.query.get("api-version")
        if version not in SERVICE_API_VERSIONS:
            raise bad_request("missing or unsupported api-version", "InvalidProtocolVersion")
    return await handler(request)


async def read_body(request: web.Request) -> bytes:
    """The whole body, or 408 if the client takes longer than the gate's body timeout."""
    gate = request.app.get(GATE_KEY)
    timeout = gate.body_timeout if gate is not None else BODY_TIMEOUT
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError as exc:
        raise HubError(408, "RequestTimeout",
                       f"request body not received in {timeout:g} s") from exc


async def json_body(request: web.Request) -> Any:
    raw = await read_body(request)
    if not raw:
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request("request body is not valid JSON") from exc
    except RecursionError as exc:  # nested past the parser's stack
        raise bad_request("request body is nested too deeply") from exc


async def json_object(request: web.Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body
