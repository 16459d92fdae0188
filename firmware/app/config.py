"""config.json (what the maker writes); board.json (what the board is) is read by ``App.setup``,
state files by app.store.

config.json::

    {"wifi": {"ssid": "...", "password": "..."},          required
     "connection_string": "HostName=...;DeviceId=...;SharedAccessKey=...",   this, or "dps"
     "dps": {"id_scope": "0ne...", "registration_id": "...",   provisioned at first boot (IoT
             "symmetric_key": "..." or "group_key": "...",     Central); the assignment is kept
             "host": "global.azure-devices-provisioning.net", in dps.json
             "model_id": "dtmi:..."},
     "ca_file": "ca.der",                                  DER root(s) the hub's chain ends in
     "telemetry_interval": 10,                             seconds, 1..86400
     "mqtt_port": 8883,
     "queue_slots": 64, "queue_slot_bytes": 256,           the offline ring on flash
     "reconnect_min_ms": 1000, "reconnect_max_ms": 100000, "reconnect_jitter_ms": 5000,
     "report_interval": 300,                               seconds between device-info reports
     "watchdog_ms": 60000}                                 0: no watchdog

``load()`` returns ``(config, None)`` or ``(None, reason)``; the reason names the field, never
the key. Identity is ``connection_string`` (or ``dps``) + ``ca_file`` (+ the CA file itself, which
must also be the root of DPS's chain, as it is in Azure); ``factoryReset``
keeps those and ``wifi`` (without it the board could never reach the hub again) and nothing else.

Run at boot and for a factory reset only: the app imports it with ``iothub.transient``, so in
place it holds no heap between those.
"""

import json
import os

from iothub import transient

_store = transient("app.store")  # held by this module only, like this module by its importer
read_json, write_json = _store.read_json, _store.write_json

CONFIG = "config.json"
IDENTITY = ("wifi", "connection_string", "dps", "ca_file")

# (name, default, low, high) for the numeric settings.
_NUMBERS = (
    ("telemetry_interval", 10, 1, 86400),
    ("mqtt_port", 8883, 1, 65535),
    ("queue_slots", 64, 2, 4096),
    ("queue_slot_bytes", 256, 64, 4096),
    ("reconnect_min_ms", 1000, 10, 3600000),
    ("reconnect_max_ms", 100000, 10, 3600000),
    ("reconnect_jitter_ms", 5000, 0, 60000),
    ("report_interval", 300, 5, 86400),
    ("watchdog_ms", 60000, 0, 3600000),
)


def load():
    """``(config dict with defaults filled in, None)`` or ``(None, reason)``."""
    try:
        with open(CONFIG) as f:
            text = f.read()
    except OSError:
        return None, "config.json is missing"
    try:
        cfg = json.loads(text)
    except ValueError:
        return None, "config.json is not valid JSON"
    text = None
    if not isinstance(cfg, dict):
        return None, "config.json must be a JSON object"
    wifi = cfg.get("wifi")
    if not isinstance(wifi, dict) or not isinstance(wifi.get("ssid"), str) or not wifi.get("ssid"):
        return None, "config.json: wifi.ssid is missing"
    if not isinstance(wifi.get("password", ""), str):
        return None, "config.json: wifi.password must be text"
    cs = cfg.get("connection_string")
    if "dps" in cfg:
        if cs is not None:
            return None, "config.json: give connection_string or dps, not both"
        problem = _dps_problem(cfg["dps"])
        if problem:
            return None, "config.json: dps." + problem
    elif not isinstance(cs, str) or not cs:
        return None, "config.json: connection_string (or dps) is missing"
    else:
        try:
            transient("iothub.connstr").parse(cs)
        except Exception as e:  # the parser's errors name the field, never the key
            return None, "config.json: connection_string: " + str(e)
    ca_file = cfg.get("ca_file", "ca.der")
    if not isinstance(ca_file, str):
        return None, "config.json: ca_file must be a file name"
    try:
        os.stat(ca_file)
    except OSError:
        return None, "config.json: ca_file " + ca_file + " is missing"
    cfg["ca_file"] = ca_file
    for name, default, low, high in _NUMBERS:
        value = cfg.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return None, "config.json: %s must be a whole number in %d..%d" % (name, low, high)
        cfg[name] = value
    return cfg, None


def _dps_problem(dps):
    if not isinstance(dps, dict):
        return "must be an object"
    for name in ("id_scope", "registration_id"):
        if not isinstance(dps.get(name), str) or not dps.get(name):
            return name + " is missing"
    keys = [name for name in ("symmetric_key", "group_key") if name in dps]
    if len(keys) != 1:
        return "needs symmetric_key or group_key (one of them)"
    try:  # a round trip: CPython's decoder skips what is not base64, MicroPython's may not
        import binascii

        key = dps[keys[0]]
        ok = binascii.b2a_base64(binascii.a2b_base64(key))[:-1] == key.encode()
    except Exception:
        ok = False
    if not ok:
        return keys[0] + " is not base64"
    for name in ("host", "model_id"):
        if not isinstance(dps.get(name, "x"), str):
            return name + " must be text"
    return None


def read_ca(cfg):
    with open(cfg["ca_file"], "rb") as f:
        return f.read()


def factory_reset():
    """Keep only identity (and Wi-Fi) in config.json; forget every other setting."""
    cfg = read_json(CONFIG, {})
    if not isinstance(cfg, dict):
        cfg = {}
    kept = {}
    for name in IDENTITY:
        if name in cfg:
            kept[name] = cfg[name]
    write_json(CONFIG, kept)
    return kept
