"""The composition root: the hub's services wired together (:func:`open_hub`, and the offline
registry the CLI uses), and the serving hub: certificates, store, MQTT and HTTPS listeners, run
until SIGINT/SIGTERM.

``serve(ServeConfig(...))`` is what ``localhub serve`` calls. Both listeners bind before the
runtime record (``runtime.json``) is written, so a reader of that file can connect at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from aiohttp import web

from . import __version__
from .endpoints import dps_routes, mqtt_websocket, upload_routes
from .endpoints.amqp import AUTH_TIMEOUT as AMQP_AUTH_TIMEOUT
from .endpoints.amqp import AmqpServer
from .endpoints.https_gate import (
    BODY_TIMEOUT,
    HEAD_TIMEOUT,
    KEEPALIVE_TIMEOUT,
    LINGERING_TIME,
    TLS_HANDSHAKE_TIMEOUT,
    ConnectionGate,
)
from .endpoints.mqtt import MAX_UNAUTHENTICATED, MqttServer
from .endpoints.rest import make_app
from .endpoints.routing import GATE_KEY
from .protocol.rights import Policy
from .services import uploads
from .services.c2d import C2DService
from .services.consumer_groups import ConsumerGroups
from .services.dps import DpsService
from .services.hub import Hub
from .services.jobs import JobService
from .services.methods import MethodService
from .services.registry import Registry
from .services.routes import Routes
from .services.servicebound import ServiceBoundQueues
from .services.sessions import SessionRegistry
from .services.telemetry import TelemetryService
from .services.twins import TwinService
from .storage import blob, certs, state
from .storage.dpsstore import DpsStore
from .storage.jobstore import JobStore
from .storage.queuestore import QueueStore
from .storage.store import Store
from .support import tls_buffers

log = logging.getLogger("localhub")
C2D_SWEEP_SECONDS = 2.0


def open_hub(db_path: Path, names: frozenset[str], policies: Mapping[str, Policy],
             clock: Callable[[], float] = time.time, route_sources: frozenset[str] = frozenset(),
             advertised: str | None = None) -> Hub:
    """The services over one store, wired together: the composition root of a serving hub."""
    store = Store(db_path)
    sessions = SessionRegistry()
    registry = Registry(store, sessions, clock, lambda device_id: c2d.pending_count(device_id))
    servicebound = ServiceBoundQueues(QueueStore(store.db), state.EVENTHUB_NAME, clock)
    c2d = C2DService(store, registry, sessions, clock, servicebound)
    twins = TwinService(store, registry, sessions, clock)
    methods = MethodService(sessions)
    jobs = JobService(JobStore(store.db), registry, twins, methods, clock)
    telemetry = TelemetryService(store, clock)
    Routes(route_sources, state.EVENTHUB_NAME, telemetry, twins)  # it listens to the twins
    # DPS allocates to this hub, by the name devices reach it at
    dps = DpsService(DpsStore(store.db), registry, advertised or sorted(names)[0], clock)
    return Hub(store, names, policies, clock, sessions, registry, c2d, twins, methods,
               telemetry, jobs, servicebound, dps)


def open_consumer_groups(state_dir: Path) -> ConsumerGroups:
    """The Event Hub endpoint's consumer groups of a state folder; a serving hub sees a change
    at the next receiver that attaches."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return ConsumerGroups(Store(state_dir / state.DB_FILE))


def open_dps(state_dir: Path) -> DpsService:
    """The provisioning service's enrollments of a state folder, for the CLI (a serving hub
    reads them at each registration); it allocates nothing."""
    state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(state_dir / state.DB_FILE)
    return DpsService(DpsStore(store.db), None, "", time.time)


def open_offline_registry(state_dir: Path) -> Registry:
    """The registry of a state folder no hub serves (the CLI's device commands before the first
    ``serve``): no sessions, C2D counted straight from the store."""
    state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(state_dir / state.DB_FILE)
    return Registry(store, SessionRegistry(), time.time,
                    lambda device_id: store.count_c2d(device_id, time.time()))


@dataclass
class ServeConfig:
    state_dir: Path
    host: str = "0.0.0.0"
    mqtt_port: int = 8883
    https_port: int = 443
    hub_name: str | None = None  # advertised HostName; default: listen IP, or LAN IP on 0.0.0.0
    extra_names: list[str] = field(default_factory=list)
    # File upload (blob.py, uploads.py): an Azure storage account, else Azurite run by the hub.
    storage_connection_string: str | None = None
    storage_container: str = blob.DEFAULT_CONTAINER
    upload_sas_ttl: int = uploads.DEFAULT_SAS_TTL
    # Connections nobody has authenticated on yet, per listener: MQTT before CONNECT, HTTPS
    # before a request with a valid token (https_gate.py).
    max_unauthenticated: int = MAX_UNAUTHENTICATED
    head_timeout: float = HEAD_TIMEOUT  # HTTPS: accept to a whole first request head
    body_timeout: float = BODY_TIMEOUT  # HTTPS: a whole request body
    amqp_port: int = 5671  # the Event Hub-compatible endpoint (endpoints/amqp.py)
    route_sources: frozenset[str] = frozenset()  # routes.py: twinChangeEvents
    amqp_auth_timeout: float = AMQP_AUTH_TIMEOUT  # AMQP: accept to an accepted CBS token


def hub_names(config: ServeConfig) -> tuple[str, list[str]]:
    """(advertised host, every name/IP the certificate carries and the hub accepts)."""
    wildcard = config.host in ("0.0.0.0", "::", "")
    lan = certs.lan_address()
    advertised = config.hub_name or (lan or "127.0.0.1" if wildcard else config.host)
    names = {"localhost", "127.0.0.1", advertised, *config.extra_names}
    if not wildcard:
        names.add(config.host)
    if lan:
        names.add(lan)
    hostname = socket.gethostname()
    if hostname and "." not in hostname.strip("."):
        names.add(hostname.lower())
    return advertised, sorted(n.lower() for n in names if n)


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


async def _expire_c2d(hub: Hub, every: float = C2D_SWEEP_SECONDS) -> None:
    """C2D messages expire on time, with their Expired feedback, even for devices nobody asks
    about."""
    while True:
        await asyncio.sleep(every)
        try:
            hub.c2d.expire()
        except Exception:  # a failed sweep must not end the sweeping
            log.exception("C2D expiry sweep failed")


async def _serve(config: ServeConfig, stop: asyncio.Event) -> None:
    state_dir = config.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    tls_buffers.shrink()
    tls_buffers.raise_fd_limit()
    policies = state.load_policies(state_dir)
    advertised, names = hub_names(config)
    cert, key = certs.ensure_server_cert(state_dir, names)
    ctx = server_ssl_context(cert, key)
    hub = open_hub(state_dir / state.DB_FILE, frozenset(names), policies,
                   route_sources=config.route_sources, advertised=advertised)
    mqtt = MqttServer(hub, ctx, config.max_unauthenticated)
    amqp = AmqpServer(hub, ctx, config.max_unauthenticated, config.amqp_auth_timeout)
    info = {"hostName": advertised, "names": names, "mqttPort": config.mqtt_port,
            "httpsPort": config.https_port, "version": __version__,
            "caPath": str(state_dir / certs.CA_CERT)}
    app = make_app(hub, info)
    gate = ConnectionGate(config.max_unauthenticated, config.head_timeout, config.body_timeout)
    app[GATE_KEY] = gate
    storage = blob.make_storage(state_dir, config.host, advertised, cert, key,
                                config.storage_connection_string, config.storage_container)
    upload_service = uploads.UploadService(
        hub.store.db, storage, hub.clock, config.upload_sas_ttl,
        on_uploaded=lambda note: hub.servicebound.file_uploaded(note.iot_hub_json()))
    upload_routes.setup(app, upload_service)
    mqtt_websocket.setup(app)
    if hub.dps is not None:
        dps_routes.setup(app, hub.dps)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           keepalive_timeout=KEEPALIVE_TIMEOUT, lingering_time=LINGERING_TIME)
    await runner.setup()
    https: asyncio.Server | None = None
    sweeper: asyncio.Task[None] | None = None
    try:
        await upload_service.resume()  # Azurite again if this state folder used it before
        await mqtt.start(config.host, config.mqtt_port)
        await amqp.start(config.host, config.amqp_port)
        assert runner.server is not None
        https = await asyncio.get_running_loop().create_server(
            gate.protocol_factory(runner.server), config.host, config.https_port, ssl=ctx,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT, reuse_address=True)
        hub.jobs.start()  # resume stored jobs now that devices can reconnect
        sweeper = asyncio.create_task(_expire_c2d(hub))
        state.write_runtime(state_dir, state.Runtime(os.getpid(), config.host, config.mqtt_port,
                                                     config.https_port, advertised, config.amqp_port))
        log.info("localhub %s serving MQTT on %s:%d, HTTPS on %d and AMQP on %d as %s", __version__,
                 config.host, config.mqtt_port, config.https_port, config.amqp_port, advertised)
        await stop.wait()
    finally:
        state.clear_runtime(state_dir, os.getpid())
        if sweeper is not None:
            sweeper.cancel()
        await hub.jobs.stop()  # unfinished jobs stay stored and resume at the next start
        await mqtt.stop()
        await amqp.stop()
        if https is not None:
            https.close()
        await runner.cleanup()  # closes the connections still open
        await upload_service.close()  # stops Azurite
        hub.close()


def serve(config: ServeConfig) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await _serve(config, stop)

    asyncio.run(main())
