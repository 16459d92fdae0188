"""Device management: desired properties the app honours (acknowledged IoT Hub's way), the
reported device facts, and the direct methods.

Desired properties honoured (each acknowledged in reported properties as
``{"value": v, "ac": 200|400, "av": <desired $version>, "ad": "..."}``; ``null`` restores the
config.json default):

- ``telemetryInterval``: seconds between telemetry messages, 1..86400
- ``reportInterval``: seconds between device-facts reports (free heap, queue, link), 5..86400
- ``ledEnabled``: true/false, the status LED

Applied values are kept in ``settings.json`` so an offline boot uses them too.

Direct methods (long work is answered first, done from the main loop):

- ``reboot`` -> 200 ``{"rebooting": true, "lastReboot": iso}``; reports ``iothubDM.reboot.lastReboot``
- ``factoryReset`` -> 200; config.json keeps identity (connection string, CA, Wi-Fi) only; the
  offline queue, settings and boot state are erased; then a reset
- ``firmwareUpdate`` ``{"url", "sha256", "version"}`` -> 202, or 400 on a bad payload
  (see ``app.fwupdate``)
- ``uploadFile`` ``{"path", "blobName"}`` -> 202, or 404 when the file is not on flash; the
  result is reported under ``lastUpload``
"""

import os
import time

from app import store
from app.events import emit

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


class Settings:
    """The values desired properties control, starting from config.json and settings.json."""

    def __init__(self, cfg):
        self.defaults = {"telemetryInterval": cfg["telemetry_interval"], "reportInterval": cfg["report_interval"],
                         "ledEnabled": True}
        self.values = dict(self.defaults)
        saved = store.read_json(SETTINGS, {})
        if isinstance(saved, dict):
            for name in self.values:
                if name in saved and self._check(name, saved[name]) is None:
                    self.values[name] = saved[name]

    def _check(self, name, value):
        spec = _DESIRED[name]
        if spec[3] is bool:
            return None if isinstance(value, bool) else "must be true or false"
        if not isinstance(value, int) or isinstance(value, bool) or not spec[1] <= value <= spec[2]:
            return "must be a whole number in %d..%d" % (spec[1], spec[2])
        return None

    def apply(self, desired, version):
        """Apply the known names in ``desired``; the reported acknowledgements (a dict)."""
        acks = {}
        changed = False
        for name in _DESIRED:
            if name not in desired:
                continue
            value = desired[name]
            if value is None:
                self.values[name] = self.defaults[name]
                acks[name] = {"value": self.values[name], "ac": 200, "av": version, "ad": "default restored"}
                changed = True
                continue
            problem = self._check(name, value)
            if problem:
                acks[name] = {"value": self.values[name], "ac": 400, "av": version, "ad": problem}
            else:
                self.values[name] = value
                acks[name] = {"value": value, "ac": 200, "av": version, "ad": "applied"}
                changed = True
        if changed:
            store.write_json(SETTINGS, self.values)
        return acks


class Methods:
    """Direct-method handlers; long work is left in ``self.action`` for the main loop."""

    def __init__(self, app):
        self.app = app
        self.action = None  # (name, argument) the main loop runs next

    def register(self, client):
        client.on_method("reboot", self.reboot)
        client.on_method("factoryReset", self.factory_reset)
        client.on_method("firmwareUpdate", self.firmware_update)
        client.on_method("uploadFile", self.upload_file)

    def _busy(self):
        return self.action is not None

    def reboot(self, payload):
        if self._busy():
            return 409, {"message": "busy with " + self.action[0]}
        when = iso_now()
        self.app.report({"iothubDM": {"reboot": {"lastReboot": when}}})
        self.action = ("reboot", None)
        emit("method", {"name": "reboot"})
        return 200, {"rebooting": True, "lastReboot": when}

    def factory_reset(self, payload):
        if self._busy():
            return 409, {"message": "busy with " + self.action[0]}
        self.action = ("factoryReset", None)
        emit("method", {"name": "factoryReset"})
        return 200, {"resetting": True}

    def firmware_update(self, payload):
        if self._busy():
            return 409, {"message": "busy with " + self.action[0]}
        from app.fwupdate import UpdateError, parse_request

        try:
            parse_request(payload)
        except UpdateError as e:
            return 400, {"message": str(e)}
        self.action = ("firmwareUpdate", payload)
        emit("method", {"name": "firmwareUpdate"})
        return 202, {"status": "accepted"}

    def upload_file(self, payload):
        if self._busy():
            return 409, {"message": "busy with " + self.action[0]}
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
        self.action = ("uploadFile", (path, blob))
        emit("method", {"name": "uploadFile"})
        return 202, {"status": "accepted", "bytes": size}


def wipe_for_factory_reset():
    """Forget everything but identity: settings, the offline queue, boot state, staged updates."""
    from iothub import transient

    transient("app.config").factory_reset()
    for name in (SETTINGS, "queue.bin", "state.json", "fw.part"):
        store.remove(name)
