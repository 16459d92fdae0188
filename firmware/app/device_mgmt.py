"""Device management: desired properties the app honours (acknowledged IoT Hub's way), the
reported device facts, and the direct methods.

Desired properties honoured (each acknowledged in reported properties as
``{"value": v, "ac": 200|400, "av": <desired $version>, "ad": "..."}``; ``null`` restores the
config.json default):

- ``telemetryInterval``: seconds between telemetry messages, 1..86400
- ``reportInterval``: seconds between device-facts reports (free heap, queue, link), 5..86400
- ``ledEnabled``: true/false, the status LED

Applied values are kept in ``settings.json`` so an offline boot uses them too.

Imported with ``iothub.transient`` whenever a desired patch, a method or the facts report comes:
run in place, none of this holds heap in between; the loop keeps only ``app.values`` (the
settings in force) and ``app.action`` (the long work a method left for it).

Direct methods (long work is answered first, done from the main loop):

- ``reboot`` -> 200 ``{"rebooting": true, "lastReboot": iso}``; reports ``iothubDM.reboot.lastReboot``
- ``factoryReset`` -> 200; config.json keeps identity (connection string, CA, Wi-Fi) only; the
  offline queue, settings and boot state are erased; then a reset
- ``firmwareUpdate`` ``{"url", "sha256", "version"}`` -> 202, or 400 on a bad payload
  (see ``app.fwupdate``)
- ``uploadFile`` ``{"path", "blobName"}`` -> 202, or 404 when the file is not on flash; the
  result is reported under ``lastUpload``
"""

import gc
import os
import time

from app.events import emit
from iothub import transient

# Held by this module only (it is itself imported with transient): none stays in sys.modules.
store = transient("app.store")
VERSION = transient("app.version").VERSION

SETTINGS = "settings.json"
# name -> (config.json key or None, low, high, kind)
_DESIRED = {
    "telemetryInterval": ("telemetry_interval", 1, 86400, int),
    "reportInterval": ("report_interval", 5, 86400, int),
    "ledEnabled": (None, 0, 0, bool),
}


def iso_now():
    t = time.gmtime()
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (t[0], t[1], t[2], t[3], t[4], t[5])


def reset_cause_name():
    import machine

    cause = machine.reset_cause()
    for name in ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET"):
        if getattr(machine, name, None) == cause:
            return name
    return str(cause)


# ---------------------------------------------------------------------- settings
def _default(cfg, name):
    key = _DESIRED[name][0]
    return cfg[key] if key else True


def _check(name, value):
    spec = _DESIRED[name]
    if spec[3] is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if not isinstance(value, int) or isinstance(value, bool) or not spec[1] <= value <= spec[2]:
        return "must be a whole number in %d..%d" % (spec[1], spec[2])
    return None


def load_settings(cfg):
    """The values desired properties control: config.json's, then settings.json's over them."""
    values = {}
    saved = store.read_json(SETTINGS, {})
    for name in _DESIRED:
        values[name] = _default(cfg, name)
        if isinstance(saved, dict) and name in saved and _check(name, saved[name]) is None:
            values[name] = saved[name]
    return values


def on_desired(app, desired, version):
    """Apply the names the app knows in ``desired`` to ``app.values``, save them and
    acknowledge each in reported properties."""
    values = app.values
    acks = {}
    changed = False
    for name in _DESIRED:
        if name not in desired:
            continue
        value = desired[name]
        if value is None:
            values[name] = _default(app.cfg, name)
            acks[name] = {"value": values[name], "ac": 200, "av": version, "ad": "default restored"}
            changed = True
            continue
        problem = _check(name, value)
        if problem:
            acks[name] = {"value": values[name], "ac": 400, "av": version, "ad": problem}
        else:
            values[name] = value
            acks[name] = {"value": value, "ac": 200, "av": version, "ad": "applied"}
            changed = True
    if changed:
        store.write_json(SETTINGS, values)
    if acks:
        app.led.enabled = values["ledEnabled"]
        app.led.set(app.client.is_connected())
        app.report(acks)
        emit("desired", {"version": version, "applied": values})
        if "telemetryInterval" in acks:
            app.next_telemetry = time.ticks_add(time.ticks_ms(), values["telemetryInterval"] * 1000)


# ---------------------------------------------------------------------- the facts report
def report_facts(app):
    if not app.fw_reported:
        transient("app.fwstatus").first_report(app)
        app.fw_reported = True
    gc.collect()
    link = transient("app.wifi").info(app.wlan)
    link["hubConnects"] = app.client.connects
    app.report({
        "app": {"version": VERSION, "firmware": app.firmware, "board": app.board.get("name", "unknown")},
        "device": {"freeHeap": gc.mem_free(), "resetCause": app.cause, "bootCount": app.boot,
                   "lastBoot": app.boot_time},
        # Top level, as the device-management reference queries it: properties.reported.connectivity.type
        "connectivity": link,
        "queue": {"pending": len(app.telemetry.ring), "dropped": app.telemetry.dropped()},
    })
    app.report_due = False
    app.next_report = time.ticks_add(time.ticks_ms(), app.values["reportInterval"] * 1000)


# ---------------------------------------------------------------------- direct methods
def method(app, name, payload):
    """Answer direct method ``name``: ``(status, payload)``. Long work is left in
    ``app.action`` for the main loop, and another long method is answered 409 until it is done."""
    if name not in ("reboot", "factoryReset", "firmwareUpdate", "uploadFile"):
        return 404, {"message": "unknown method: " + name}  # as the library answers one
    if app.action is not None:
        return 409, {"message": "busy with " + app.action[0]}
    arg = None
    if name == "reboot":
        when = iso_now()
        app.report({"iothubDM": {"reboot": {"lastReboot": when}}})
        answer = (200, {"rebooting": True, "lastReboot": when})
    elif name == "factoryReset":
        answer = (200, {"resetting": True})
    elif name == "firmwareUpdate":
        fwupdate = transient("app.fwupdate")
        try:
            fwupdate.parse_request(payload)
        except fwupdate.UpdateError as e:
            return 400, {"message": str(e)}
        arg = payload
        answer = (202, {"status": "accepted"})
    elif name == "uploadFile":
        if not isinstance(payload, dict) or not isinstance(payload.get("path"), str):
            return 400, {"message": "payload must be {path[, blobName]}"}
        path = payload["path"]
        blob = payload.get("blobName") or path.lstrip("/").replace("/", "_")
        if not isinstance(blob, str):
            return 400, {"message": "blobName must be text"}
        try:
            size = os.stat(path)[6]
        except OSError:
            return 404, {"message": "no such file: " + path[:64]}
        arg = (path, blob)
        answer = (202, {"status": "accepted", "bytes": size})
    app.action = (name, arg)
    emit("method", {"name": name})
    return answer


def wipe_for_factory_reset():
    """Forget everything but identity: settings, the offline queue, boot state, staged updates."""
    transient("app.config").factory_reset()
    for name in (SETTINGS, "queue.bin", "state.json", "fw.part"):
        store.remove(name)
