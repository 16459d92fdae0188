"""Small JSON state files on flash (state.json, settings.json), written so a reset mid-write
leaves the old file. Resident: settings are saved whenever a desired patch changes them, while
config.json's validation (``app.config``) runs once at boot and is released."""

import json
import os


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def write_json(path, data):
    # Write beside, then rename: a reset mid-write leaves the old file, never half a file.
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.rename(tmp, path)


def remove(path):
    try:
        os.remove(path)
        return True
    except OSError:
        return False
