"""The part of the firmware an update never replaces: the app-folder switch and the rollback.

An update stages the new app in ``app.new/``, then switches with two renames (``app`` ->
``app.old``, ``app.new`` -> ``app``) and records ``{"pending": new, "previous": old, "tries": 0}``
in ``fwstate.json``. At every boot ``prepare()``:

- finishes a switch cut short by a reset (``app`` missing: ``app.new`` or else ``app.old`` takes
  its place);
- counts boots of a pending version; after ``MAX_TRIES`` boots without the app confirming
  (``confirm()``, once it has reported ``current`` to the hub) the old app comes back and the state
  says ``rolledback``. An app that does not even import is rolled back at once (``rollback()``).

On a board deployed in place (``boardkit deploy`` to a ROMFS partition) the app is ``/rom/app``
and there is no ``app`` on flash: an update's ``app`` on flash comes first on ``sys.path`` and
shadows it, and rolling back removes it, so the ROM copy runs again.
"""

import json
import os

STATE = "fwstate.json"
MAX_TRIES = 3


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def rmtree(path):
    """Remove ``path`` (file or folder, recursively); nothing there is fine."""
    try:
        mode = os.stat(path)[0]
    except OSError:
        return
    if not mode & 0x4000:
        os.remove(path)
        return
    for name in os.listdir(path):
        rmtree(path + "/" + name)
    os.rmdir(path)


def load():
    try:
        with open(STATE) as f:
            state = json.load(f)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def save(state):
    with open(STATE + ".tmp", "w") as f:
        json.dump(state, f)
    os.rename(STATE + ".tmp", STATE)


def switch(version, previous):
    """Make ``app.new`` the app, keeping the running one as ``app.old`` until confirmed."""
    rmtree("app.old")
    save({"pending": version, "previous": previous, "tries": 0})
    if exists("app"):
        os.rename("app", "app.old")
    os.rename("app.new", "app")


def rollback(reason):
    state = load()
    if exists("app.old"):
        rmtree("app.bad")
        if exists("app"):
            os.rename("app", "app.bad")
        os.rename("app.old", "app")
        rmtree("app.bad")
    elif exists("/rom/app"):
        rmtree("app")
    save({"rolledback": state.get("pending"), "previous": state.get("previous"), "reason": reason})
    print('{"event": "fw_rollback", "reason": "%s"}' % reason.replace('"', "'"))


def confirm():
    """The pending version runs and the hub knows: forget the old app."""
    rmtree("app.old")
    save({})


def prepare():
    """Run at boot before importing the app; returns the state (see the module docstring)."""
    state = load()
    if not exists("app"):
        # A switch cut short by a reset. On a board deployed in place, no app on flash is the
        # normal case, and app.new is only promoted once switch() has recorded it as pending.
        if exists("app.new") and state.get("pending"):
            os.rename("app.new", "app")
        elif exists("app.old"):
            os.rename("app.old", "app")
    if state.get("pending"):
        state["tries"] = state.get("tries", 0) + 1
        save(state)
        if state["tries"] > MAX_TRIES:
            rollback("the new version did not come up in %d boots" % MAX_TRIES)
            state = load()
    return state
