"""Errors the hub's services raise, with the HTTP status and IoT Hub error code to answer with."""

from __future__ import annotations


class HubError(Exception):
    """A refused operation. ``status`` is the HTTP status, ``code`` IoT Hub's error code name.

    The REST layer turns it into IoT Hub's error body
    ``{"Message": "ErrorCode:<code>;<message>", "ExceptionMessage": ...}`` and the
    ``iothub-errorcode`` header; the MQTT layer into a twin/method status.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(device_id: str) -> HubError:
    return HubError(404, "DeviceNotFound", f"Device {device_id!r} not registered")


def bad_request(message: str, code: str = "ArgumentInvalid") -> HubError:
    return HubError(400, code, message)
