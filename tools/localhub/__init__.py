"""localhub: a local Azure IoT Hub for development, tests and test rigs.

Speaks IoT Hub's MQTT dialect over TLS (port 8883) and its service REST API over HTTPS (443), so
the official Azure SDKs and the on-device library work against it unchanged. Start it with
``localhub serve --state DIR`` (or ``python -m localhub serve``); from tests use
:mod:`localhub.testing`. Layers, bottom up (each imports only those below it;
tests/localhub/test_layout.py holds the rule)::

    protocol/   the IoT Hub dialect, pure: SAS tokens and rights, MQTT packets, topics and
                property bags (shared with the device library), twin documents, errors
    support/    process plumbing: log volume caps, TLS buffers and open-file limits, sockets
    query/      the IoT Hub query language: lexer, parser, evaluation
    storage/    SQLite store and job store, the state folder, the development CA, blob storage
    services/   registry, sessions, C2D, twins, methods, telemetry, jobs, uploads, bulk, and
                hub.Hub, the facade the endpoints call
    endpoints/  MQTT over TLS (mqtt), HTTPS (routing, rest, job_routes, upload_routes,
                https_gate)
    client/     clients of a running hub: REST (hub_client), uploads, long polls
    server      the composition root: open_hub wires the services, serve runs the listeners
    cli/        the ``localhub`` command (main, and its jobs and uploads verbs)
    testing/    HubProcess for tests, loadsim for the many-devices benchmark
"""

__version__ = "0.1.0"
