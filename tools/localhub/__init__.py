"""localhub: a local Azure IoT Hub for development, tests and test rigs.

Speaks IoT Hub's MQTT dialect over TLS (port 8883) and its service REST API over HTTPS (443), so
the official Azure SDKs and the on-device library work against it unchanged. Start it with
``localhub serve --state DIR`` (or ``python -m localhub serve``); from tests use
:mod:`localhub.testing`. Module map:

- ``mqtt_codec``  MQTT 3.1.1 packets, pure        - ``mqtt_server``  IoT Hub MQTT connections
- ``topics``      IoT Hub topics, property bags    - ``auth``         SAS tokens
- ``store``       SQLite persistence               - ``registry``     device identities
- ``twin``        twin documents, pure             - ``twins``        twin service
- ``methods``     direct methods                   - ``c2d``          cloud-to-device queue
- ``telemetry``   device-to-cloud stream           - ``query``        query language
- ``hub``         services wired together          - ``rest``         HTTPS routes (aiohttp)
- ``certs``       development CA and server cert   - ``state``        state folder, names
- ``server``      run everything                   - ``client``       HTTPS client (CLI, tests)
- ``cli``         ``localhub`` command             - ``testing``      HubProcess for tests
- ``blob``        blob storage: Azurite or Azure   - ``uploads``      file upload service
- ``upload_routes`` file-upload HTTPS routes       - ``upload_client`` its client side
- ``upload_cli``  ``localhub upload ...``
"""

__version__ = "0.1.0"
