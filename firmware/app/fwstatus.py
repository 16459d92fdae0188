"""The firmware's state in the twin (``properties.reported.firmware``, the device-management
reference's fields): the first report after a boot, with an update's outcome, and each step of an
update. Its own small module so that reporting once after the first connect does not bring back
the whole of ``app.startup``."""

from app.events import emit
from iothub import transient

VERSION = transient("app.version").VERSION


def first_report(app):
    """The first report after boot: the firmware's version and an update's outcome."""
    state = app.fwstate
    fw = {"currentFwVersion": VERSION, "pendingFwVersion": "", "fwUpdateStatus": "current",
          "fwUpdateSubstatus": ""}
    done = None
    if state.get("rolledback"):
        fw["fwUpdateStatus"] = "rolledback"
        fw["fwUpdateSubstatus"] = state.get("reason", "")

        def done(status, version):
            if status in (200, 204):
                transient("fwguard").save({})
    elif state.get("pending"):
        if state["pending"] != VERSION:
            fw["fwUpdateStatus"] = "error"
            fw["fwUpdateSubstatus"] = "booted %s, expected %s" % (VERSION, state["pending"])

        def done(status, version):
            if status in (200, 204):
                transient("fwguard").confirm()
                emit("fw_confirmed", {"version": VERSION})
    app.report({"firmware": fw, "iothubDM": {"reboot": {"lastReboot": app.boot_time}}}, done)
    emit("fw_status", {"status": fw["fwUpdateStatus"], "version": VERSION})


def report(app, status, substatus, pending):
    """One step of an update: ``status`` is the device-management reference's fwUpdateStatus."""
    app.report({"firmware": {"currentFwVersion": VERSION, "pendingFwVersion": pending,
                             "fwUpdateStatus": status, "fwUpdateSubstatus": substatus}})
    emit("fw_status", {"status": status, "detail": substatus, "version": VERSION})
