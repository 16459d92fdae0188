"""localhub: a local Azure IoT Hub for development, tests and test rigs.

Speaks IoT Hub's MQTT dialect over TLS (port 8883), its service REST API over HTTPS (443) and
AMQP over TLS (5671: the Event Hub-compatible endpoint, C2D, feedback and file notifications), so
the official Azure SDKs and the on-device library work against it unchanged. Start it with
``localhub serve --state DIR`` (or ``python -m localhub serve``); from tests use
:mod:`localhub.testing`. Layers, bottom up (each imports only those below it;
tests/localhub/test_layout.py holds the rule)::

    protocol/   the IoT Hub dialect, pure: SAS tokens and rights, MQTT packets, topics and
                property bags (shared with the device library), twin documents, errors
    support/    process plumbing: log volume caps, TLS buffers and open-file limits, sockets
    query/      the IoT Hub query language: lexer, parser, evaluation
    storage/    SQLite store, job store and service-bound queue store, the state folder, the
                development CA, blob storage
    services/   registry, sessions, C2D, twins, methods, telemetry, routes, jobs, uploads, bulk,
                the service-bound queues (feedback, file notifications), and hub.Hub, the
                facade the endpoints call
    endpoints/  MQTT over TLS (mqtt), HTTPS (routing, rest, job_routes, upload_routes,
                https_gate), AMQP (amqp, with amqp_sasl, amqp_frames, amqp_eventhub,
                amqp_service)
    client/     clients of a running hub: REST (hub_client), uploads, long polls, the Event
                Hub-compatible endpoint (eventhub_reader)
    server      the composition root: open_hub wires the services, serve runs the listeners
    cli/        the ``localhub`` command (main, and its jobs and uploads verbs)
    testing/    HubProcess for tests, loadsim for the many-devices benchmark
"""

__version__ = "0.1.0"
