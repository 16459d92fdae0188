# Freeze the core of the library into a MicroPython firmware image (micropython-lib conventions):
#   include("path/to/this/repo/lib/manifest.py")           in your board's manifest
#   include("path/to/this/repo/lib/manifest_upload.py")    for file upload as well
# Frozen bytecode runs from flash, so the modules cost almost no heap: the usual way to fit the agent
# on an ESP8266. The mip equivalents are package.json (core) and upload.json (file upload).
metadata(
    version="0.1.0",
    description="Azure IoT Hub device library: SAS tokens, MQTT telemetry, C2D, twins, direct methods",
    license="MIT",
)
package("iothub", files=("__init__.py", "client.py", "clock.py", "connstr.py", "errors.py", "inbound.py", "mqtt.py", "net.py", "pending.py", "retry.py", "ring.py", "sas.py", "session.py", "topics.py", "twin.py"), base_path=".")
