"""The long work direct methods ask for, run by the loop once the method is answered: reboot,
factory reset, firmware update, file upload. Seldom run, so ``app.main`` imports it with
``iothub.transient``: in place it holds no heap between actions."""

import gc
import time

import machine

from app.events import emit
from iothub import transient


def run(app):
    name, arg = app.action
    if name == "reboot":
        _reset(app, "reboot")
    elif name == "factoryReset":
        transient("app.device_mgmt").wipe_for_factory_reset()
        emit("factory_reset", {})
        _reset(app, "factoryReset")
    elif name == "firmwareUpdate":
        gc.collect()
        fwstatus = transient("app.fwstatus")
        fwupdate = transient("app.fwupdate")

        def report(status, substatus, pending):
            fwstatus.report(app, status, substatus, pending)
            _flush(app, 50)

        ca = transient("app.config").read_ca(app.cfg)
        version = fwupdate.run(arg, ca, app.board.get("upload_chunk", 1024), report, app.feed)
        if version:
            fwstatus.report(app, "rebooting", "", version)
            _reset(app, "firmwareUpdate")
    elif name == "uploadFile":
        _upload(app, arg[0], arg[1])
    app.action = None  # until here another long method is answered 409
    emit("action_done", {"name": name})
    gc.collect()


def _flush(app, ms):
    # Let the session put what was just queued on the wire (method answers, patches).
    start = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), start) < ms:
        app.feed()
        try:
            app.client.poll()
        except Exception:
            pass
        time.sleep_ms(20)


def _reset(app, why):
    emit("resetting", {"why": why})
    _flush(app, 300)
    try:
        app.client.disconnect()
    except Exception:
        pass
    time.sleep_ms(100)
    machine.reset()


def _upload(app, path, blob):
    result = {"path": path, "blobName": blob}

    def progress(sent, total):
        app.feed()  # a long upload must not look like a hang to the watchdog

    try:
        done = app.client.upload_file(path, blob, progress=progress, chunk_size=app.board.get("upload_chunk", 1024))
        result["status"] = "done" if done.get("isSuccess") else "error"
        result["statusCode"] = done.get("statusCode")
        result["bytes"] = done.get("bytes")
    except Exception as e:
        result["status"] = "error"
        result["error"] = "%s: %s" % (type(e).__name__, e)
    app.report({"lastUpload": result})
    emit("upload", result)
