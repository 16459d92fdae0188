# MicroPython's `network` (WLAN) for a board simulated in the hostemu VM: the parent's simulated
# radio (the CPython runtime's, over the same board state: join delay, wrong password,
# .hostemu/wifi_down), reached through the "network" service.

from micropython import const
import _hostemu

_call = _hostemu.call
_SVC = "network"

STA_IF = const(0)
AP_IF = const(1)
STAT_IDLE = const(1000)
STAT_CONNECTING = const(1001)
STAT_GOT_IP = const(1010)
STAT_NO_AP_FOUND = const(201)
STAT_WRONG_PASSWORD = const(202)
STAT_BEACON_TIMEOUT = const(200)
STAT_ASSOC_FAIL = const(203)
STAT_HANDSHAKE_TIMEOUT = const(204)
AUTH_OPEN = const(0)
AUTH_WPA2_PSK = const(3)


class WLAN:
    def __init__(self, interface_id=STA_IF):
        if interface_id != STA_IF and interface_id != AP_IF:
            raise ValueError("invalid WLAN interface identifier")
        self._if = interface_id

    def active(self, is_active=None):
        if is_active is None:
            return _call(_SVC, "active", self._if)
        _call(_SVC, "active", self._if, 1 if is_active else 0)

    def connect(self, ssid=None, key=None, bssid=None):
        _call(_SVC, "connect", self._if, ssid, key)

    def disconnect(self):
        _call(_SVC, "disconnect", self._if)

    def isconnected(self):
        return _call(_SVC, "isconnected", self._if)

    def status(self, param=None):
        return _call(_SVC, "status", self._if, param)

    def scan(self):
        import json
        from binascii import unhexlify

        return [(s.encode(), unhexlify(b), ch, rssi, auth, hidden)
                for s, b, ch, rssi, auth, hidden in json.loads(_call(_SVC, "scan", self._if))]

    def ifconfig(self, config=None):
        if config is not None:
            return None
        import json

        return tuple(json.loads(_call(_SVC, "ifconfig", self._if)))

    def config(self, *args, **kwargs):
        if kwargs:
            if "hostname" in kwargs:
                _call(_SVC, "set_hostname", kwargs["hostname"])
            return None
        if len(args) != 1:
            raise ValueError("unknown config param")
        text = _call(_SVC, "config", self._if, args[0])
        if args[0] == "mac":
            from binascii import unhexlify

            return unhexlify(text)
        import json

        return json.loads(text)


def hostname(name=None):
    if name is None:
        return _call(_SVC, "hostname")
    _call(_SVC, "set_hostname", name)
