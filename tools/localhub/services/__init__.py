"""The hub's behaviour, behind no protocol: registry, sessions, C2D, twins, methods, telemetry,
jobs, file uploads, bulk operations, and :class:`services.hub.Hub`, the facade the endpoints
call. The services never see a socket."""
