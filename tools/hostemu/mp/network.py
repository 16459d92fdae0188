"""MicroPython's `network` (WLAN) over a simulated radio.

The air holds the access points given to `hostemu run --wifi SSID:PASSWORD` (default
`hostemu:hostemu`). Joining takes a moment, as on a chip: `connect()` returns at once and
`isconnected()` turns true a little later. A test takes the access point away by creating
`.hostemu/wifi_down` in the board folder: the link drops and sockets fail until it is removed.
"""

import time as _host_time

from hostemu import context as _context

STA_IF = 0
AP_IF = 1

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_BEACON_TIMEOUT = 200
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204

AUTH_OPEN = 0
AUTH_WPA2_PSK = 3

_JOIN_SECONDS = 0.3
_ADDRESS = ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")


def _refresh(state) -> None:
    board = _context.current()
    if state.status_code == STAT_CONNECTING and _host_time.monotonic() - state.connect_started >= _JOIN_SECONDS:
        if state.ssid not in board.networks:
            state.status_code = STAT_NO_AP_FOUND
        elif board.networks[state.ssid] != state.password:
            state.status_code = STAT_WRONG_PASSWORD
        elif board.link_up():
            state.status_code = STAT_GOT_IP
        else:
            state.status_code = STAT_NO_AP_FOUND
    elif state.status_code == STAT_GOT_IP and not board.link_up():
        state.status_code = STAT_BEACON_TIMEOUT


def is_link_up() -> bool:
    """Whether the board has an IP address now (sockets need one)."""
    state = _context.current().wlan
    _refresh(state)
    return state.active and state.status_code == STAT_GOT_IP


class WLAN:
    def __init__(self, interface_id: int = STA_IF) -> None:
        if interface_id not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        self._interface = interface_id
        self._state = _context.current().wlan

    def active(self, is_active: bool | None = None) -> bool | None:
        if is_active is None:
            return self._state.active
        self._state.active = bool(is_active)
        if not is_active:
            self._state.status_code = STAT_IDLE
        return None

    def connect(self, ssid: str | None = None, key: str | None = None, *, bssid=None) -> None:
        if not self._state.active:
            raise OSError("Wifi Not Started")
        self._state.ssid = ssid
        self._state.password = key or ""
        self._state.connect_started = _host_time.monotonic()
        self._state.status_code = STAT_CONNECTING

    def disconnect(self) -> None:
        self._state.status_code = STAT_IDLE

    def isconnected(self) -> bool:
        return self._interface == STA_IF and is_link_up()

    def status(self, param: str | None = None):
        if param == "rssi":
            return -55
        _refresh(self._state)
        return self._state.status_code

    def scan(self) -> list:
        if not self._state.active:
            raise OSError("Wifi Not Started")
        board = _context.current()
        if not board.link_up():
            return []
        return [(ssid.encode(), b"\x02\x00\x00\x00\x00\x01", 6, -55, AUTH_WPA2_PSK, False) for ssid in board.networks]

    def ifconfig(self, config: tuple | None = None):
        if config is not None:
            return None
        return _ADDRESS if self.isconnected() else ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def config(self, *args, **kwargs):
        if kwargs:
            if "hostname" in kwargs:
                self._state.hostname = kwargs["hostname"]
            return None
        if args == ("mac",):
            return _context.current().unique_id()
        if args == ("ssid",):
            return self._state.ssid or ""
        if args in (("hostname",), ("dhcp_hostname",)):
            return self._state.hostname
        raise ValueError("unknown config param")


def hostname(name: str | None = None):
    state = _context.current().wlan
    if name is None:
        return state.hostname
    state.hostname = name
    return None
