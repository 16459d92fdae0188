# One JSON line per event on the console, e.g. {"event": "telemetry", "seq": 5}: what a test rig
# (hostemu.testing.BoardProcess.expect_json) or a person on the serial port follows.
import json


def emit(name, fields=None):
    record = {"event": name}
    if fields:
        record.update(fields)
    print(json.dumps(record))
