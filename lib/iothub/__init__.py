"""Azure IoT Hub device library for MicroPython (CPython compatible).

Layers, bottom up (each module does one job; optional parts are imported lazily):

- pure protocol, no I/O and no clock: ``connstr`` (connection strings), ``sas`` (URL encoding,
  HMAC-SHA256, SAS tokens, port epoch), ``topics`` (IoT Hub MQTT topics and property bags),
  ``twin`` (desired/reported bookkeeping), ``pending`` (request ids), ``retry`` (backoff delays),
  ``blocks`` (blob block ids and the block-list XML);
- transport: ``mqtt`` (MQTT 3.1.1 client with umqtt.simple's interface), ``http`` (streaming
  HTTP/1.1 client), ``net`` (sockets + TLS as MicroPython exposes them);
- session: ``session.Session`` (connect, renewal, keepalive, backoff, telemetry window and queue,
  its states and transitions as a table);
- API: ``client.IoTHubClient`` on the session (twin requests, methods); ``inbound`` (what
  comes in, imported per message); ``upload.upload_file`` (imported only when used).

Importing the package itself costs next to nothing: import the module you need.
"""

__version__ = "0.1.0"


def transient(name):
    """Module ``name`` for the task at hand, then released when it runs in place (from a ROMFS
    image or frozen): code that runs once or seldom (parsing the connection string, making a SAS
    token, a backoff delay) then holds no heap between uses, and importing it again costs no copy
    of its bytecode. Loaded from a file, it stays imported, as a re-import would load it again;
    so does a module imported the usual way before (a test patching it, say)."""
    import sys

    if name in sys.modules:  # imported the usual way (or in use further up the stack): kept
        return sys.modules[name]
    module = __import__(name, None, None, ("_",))
    where = getattr(module, "__file__", ".frozen")
    if where.startswith("/rom/") or where.startswith(".frozen"):
        sys.modules.pop(name, None)
        parent, _, short = name.rpartition(".")
        package = sys.modules.get(parent) if parent else None
        if package is not None and short in package.__dict__:
            delattr(package, short)  # the import set it: it would keep the module alive
    return module
