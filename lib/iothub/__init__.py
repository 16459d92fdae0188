"""Azure IoT Hub device library for MicroPython (CPython compatible).

Layers, bottom up (each module does one job; optional parts are imported lazily):

- pure protocol, no I/O and no clock: ``connstr`` (connection strings), ``sas`` (URL encoding,
  HMAC-SHA256, SAS tokens, port epoch), ``topics`` (IoT Hub MQTT topics and property bags),
  ``twin`` (desired/reported bookkeeping), ``pending`` (request ids), ``retry`` (backoff delays),
  ``blocks`` (blob block ids and the block-list XML);
- transport: ``mqtt`` (MQTT 3.1.1 client with umqtt.simple's interface), ``http`` (streaming
  HTTP/1.1 client), ``net`` (sockets + TLS as MicroPython exposes them);
- session and API: ``client.IoTHubClient``; ``upload.upload_file`` (imported only when used).

Importing the package itself costs nothing: import the module you need.
"""

__version__ = "0.1.0"
