"""IoT Hub's permission model: the four rights, the default shared access policies, token scope.

From "Control access to IoT Hub" (reference/iothub-docs-full.txt)::

    RegistryRead     read the identity registry (devices, device statistics)
    RegistryWrite    change it (create, update, delete, bulk)
    ServiceConnect   the service-facing endpoints: C2D and its feedback, telemetry, file-upload
                     notifications, twins (tags, desired, reported), methods, queries, jobs
    DeviceConnect    the device-facing endpoints, on behalf of any device (a gateway, a token
                     service); a device's own key grants it for that device only

A new hub has the policies iothubowner (all four), service, device, registryRead and
registryReadWrite (read and write). A token's ``sr`` may be narrower than the hub: it then opens
only the routes under that path (``host/devices/dev1`` opens ``/devices/dev1/...``, not
``/devices`` nor ``/twins/dev1``), compared segment by segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Flag


class Right(Flag):
    NONE = 0
    REGISTRY_READ = 1
    REGISTRY_WRITE = 2
    SERVICE_CONNECT = 4
    DEVICE_CONNECT = 8
    ALL = 15


# The names ARM and the portal use (AccessRights: "RegistryRead, RegistryWrite, ...").
_NAMES = {"RegistryRead": Right.REGISTRY_READ, "RegistryWrite": Right.REGISTRY_WRITE,
          "ServiceConnect": Right.SERVICE_CONNECT, "DeviceConnect": Right.DEVICE_CONNECT}

DEFAULT_POLICIES: dict[str, Right] = {
    "iothubowner": Right.ALL,
    "service": Right.SERVICE_CONNECT,
    "device": Right.DEVICE_CONNECT,
    "registryRead": Right.REGISTRY_READ,
    "registryReadWrite": Right.REGISTRY_READ | Right.REGISTRY_WRITE,
}


@dataclass(frozen=True)
class Policy:
    name: str
    key: str
    rights: Right


def parse_rights(text: str) -> Right:
    """``"RegistryRead, ServiceConnect"`` -> the flags; an unknown name is a ValueError."""
    rights = Right.NONE
    for part in text.replace(",", " ").split():
        if part not in _NAMES:
            raise ValueError(f"unknown right {part!r}; expected some of {', '.join(_NAMES)}")
        rights |= _NAMES[part]
    return rights


def format_rights(rights: Right) -> str:
    return ", ".join(name for name, flag in _NAMES.items() if flag in rights)


def describe(need: Right) -> str:
    return format_rights(need) or "no right"


def _segments(path: str) -> list[str]:
    return [part.lower() for part in path.split("/") if part]


def scope_covers(scope_path: str, resource_path: str) -> bool:
    """Whether a token scoped to ``scope_path`` (its ``sr`` without the host) opens
    ``resource_path``: the scope's segments are a prefix of the resource's."""
    scope = _segments(scope_path)
    return _segments(resource_path)[:len(scope)] == scope
