"""The hub's facade: its services, device authentication and the session lifecycle.

Protocol front ends (endpoints.mqtt, endpoints.rest) call into a :class:`Hub`; the services
never see a socket. Everything runs on one asyncio event loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import parse_qs

from ..protocol import auth
from ..protocol.mqtt_codec import (
    CONNACK_BAD_PROTOCOL,
    CONNACK_ID_REJECTED,
    CONNACK_NOT_AUTHORIZED,
    Connect,
)
from ..protocol.rights import Policy
from ..storage.store import Store, module_identity
from .c2d import C2DService
from .dps import DpsService
from .jobs import JobService
from .methods import MethodService
from .registry import Registry
from .servicebound import ServiceBoundQueues
from .sessions import DeviceSession, SessionRegistry
from .telemetry import TelemetryService
from .twins import TwinService

log = logging.getLogger("localhub")

# Device API versions the MQTT endpoint accepts in the CONNECT user name.
DEVICE_API_VERSIONS = frozenset({"2018-06-30", "2019-10-01", "2020-09-30", "2021-04-12"})


class ConnectRefused(Exception):
    """CONNECT refused; ``code`` is the CONNACK return code. The message never holds the token."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Authenticated:
    device_id: str
    module_id: str | None
    token_expiry: int
    model_id: str | None  # the Plug and Play model the user name announces, if any

    @property
    def identity(self) -> str:
        return module_identity(self.device_id, self.module_id) if self.module_id else self.device_id


class Hub:
    """The services of one hub and what connects a device session to them. Built by
    ``server.open_hub``, the one place the services are wired together."""

    def __init__(self, store: Store, names: frozenset[str], policies: Mapping[str, Policy],
                 clock: Callable[[], float], sessions: SessionRegistry, registry: Registry,
                 c2d: C2DService, twins: TwinService, methods: MethodService,
                 telemetry: TelemetryService, jobs: JobService,
                 servicebound: ServiceBoundQueues, dps: DpsService | None = None) -> None:
        self.store = store
        self.names = frozenset(n.lower() for n in names)
        self.policies = policies
        self.clock = clock
        self.sessions = sessions
        self.registry = registry
        self.c2d = c2d
        self.twins = twins
        self.methods = methods
        self.telemetry = telemetry
        self.jobs = jobs  # started by server.py once the listeners are up
        self.servicebound = servicebound  # C2D feedback and file upload notifications
        self.dps = dps  # the provisioning service beside the hub (mqtt_dps.py serves it)

    # --- device authentication -------------------------------------------------------------
    def authenticate(self, connect: Connect) -> Authenticated:
        """Check a CONNECT against the registry: a device (client id ``{device}``) or a module
        identity (``{device}/{module}``), its user name and SAS token."""
        if connect.protocol_name != "MQTT" or connect.protocol_level != 4:
            raise ConnectRefused(CONNACK_BAD_PROTOCOL, "only MQTT 3.1.1 is supported")
        client_id = connect.client_id
        device_id, _, module_id = client_id.partition("/")
        if not device_id or "/" in module_id or (_ and not module_id):
            raise ConnectRefused(CONNACK_ID_REJECTED, "client id must be {deviceId} or {deviceId}/{moduleId}")
        username = connect.username or ""
        host, sep, rest = username.partition("/")
        if not sep or not rest.startswith(client_id + "/") or not auth.host_matches(host, self.names):
            raise ConnectRefused(CONNACK_NOT_AUTHORIZED,
                                 "user name must be {hub host}/{client id}/?api-version=...")
        query = rest[len(client_id) + 1:]
        params = parse_qs(query[1:] if query.startswith("?") else query)
        if params.get("api-version", [""])[0] not in DEVICE_API_VERSIONS:
            raise ConnectRefused(CONNACK_NOT_AUTHORIZED, "unsupported or missing api-version")
        dev = self.store.get_device(device_id)
        if dev is None or dev.status != "enabled":
            raise ConnectRefused(CONNACK_NOT_AUTHORIZED, "device unknown or disabled")
        keys = [dev.primary_key, dev.secondary_key]
        if module_id:
            mod = self.store.get_module(device_id, module_id)
            if mod is None:
                raise ConnectRefused(CONNACK_NOT_AUTHORIZED, "module unknown")
            keys = [mod.primary_key, mod.secondary_key]
        if connect.password is None:
            raise ConnectRefused(CONNACK_NOT_AUTHORIZED, "a SAS token is required as password")
        try:
            token = auth.verify_device_token(connect.password.decode("utf-8", "replace"),
                                             device_id, keys, self.names, self.clock(),
                                             self.policies, module_id or None)
        except auth.AuthError as exc:
            raise ConnectRefused(CONNACK_NOT_AUTHORIZED, str(exc)) from exc
        return Authenticated(device_id, module_id or None, token.expiry,
                             params.get("model-id", [None])[0])

    # --- session lifecycle -----------------------------------------------------------------
    def session_opened(self, session: DeviceSession, clean_session: bool, model_id: str | None = None) -> bool:
        """Register a new connection (dropping an older one); return MQTT session-present.

        IoT Hub keeps a clean-session-0 device's subscriptions across connections and restarts
        (the official SDKs reconnect without subscribing again: after a token renewal their
        methods, desired patches and twin responses depend on it). A clean session drops them."""
        self.sessions.attach(session)
        self.registry.mark_connection(session.identity)
        self.registry.touch(session.identity)
        if model_id:
            self.registry.record_model_id(session.identity, model_id)
        if clean_session:
            self.store.save_subscriptions(session.identity, {})
            return False
        kept = self.store.subscriptions(session.identity)
        for kind, qos in kept.items():
            session.subscriptions.setdefault(kind, qos)
        return bool(kept)

    def session_ready(self, session: DeviceSession) -> None:
        """After CONNACK: deliver what a restored subscription is owed."""
        self.c2d.deliver(session)

    def subscriptions_changed(self, session: DeviceSession) -> None:
        """A SUBSCRIBE or UNSUBSCRIBE changed what the session holds: kept if it persists."""
        if not session.clean_session:
            self.store.save_subscriptions(session.identity, session.subscriptions)

    def session_closed(self, session: DeviceSession) -> None:
        self.c2d.session_closed(session)
        if self.sessions.detach(session):
            self.registry.mark_connection(session.identity)
            self.methods.device_gone(session.identity)

    def close(self) -> None:
        self.store.close()
