"""Twin documents: validation, merge with ``null`` deletes, versions. Pure; the clock is passed in.

Limits follow today's IoT Hub (DESIGN.md section 3): desired and reported 32 KB each, tags 8 KB,
nesting depth 10 below the section, keys of at most 128 bytes without ``.``, ``$``, space or
control characters, string values of at most 4 KB. Sizes are measured on compact JSON, which is
what IoT Hub counts (characters outside strings that are not whitespace).
"""

from __future__ import annotations

import json
import time
from typing import Any

MAX_SECTION_BYTES = {"desired": 32 * 1024, "reported": 32 * 1024, "tags": 8 * 1024}
MAX_DEPTH = 10
MAX_KEY_BYTES = 128
MAX_STRING_BYTES = 4 * 1024


class TwinError(ValueError):
    """A twin operation refused; ``status`` is the HTTP/MQTT status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def iso_now(now: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` as IoT Hub writes timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def compact_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _check_key(key: str) -> None:
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise TwinError(f"property name of 1 to {MAX_KEY_BYTES} bytes required")
    for ch in key:
        if ch in ".$ " or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            raise TwinError(f"property name {key[:32]!r} contains '.', '$', a space or a control character")


def _check_value(value: Any, depth: int, allow_null: bool) -> None:
    if value is None:
        if not allow_null:
            raise TwinError("null is only allowed in a patch")
        return
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise TwinError(f"twin nesting deeper than {MAX_DEPTH} levels")
        for key, child in value.items():
            _check_key(key)
            _check_value(child, depth + 1, allow_null)
        return
    if isinstance(value, list):
        for child in value:
            _check_value(child, depth + 1, False)
        return
    if isinstance(value, str):
        if len(value.encode("utf-8")) > MAX_STRING_BYTES:
            raise TwinError(f"string value longer than {MAX_STRING_BYTES} bytes")
        return
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return
    raise TwinError("unsupported JSON value")


def validate_section(doc: Any, *, patch: bool) -> dict[str, Any]:
    """Check a tags/desired/reported object (or a patch of one) and return it.

    Keys starting with ``$`` are refused except ``$version``/``$metadata`` which callers strip
    first; depth counts objects below the section root.
    """
    if not isinstance(doc, dict):
        raise TwinError("twin section must be a JSON object")
    for key, child in doc.items():
        _check_key(key)
        _check_value(child, 1, patch)
    return doc


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object; TwinError(400) otherwise."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TwinError("malformed JSON") from exc
    except RecursionError as exc:  # nested past the parser's stack: far past IoT Hub's limit
        raise TwinError(f"twin nesting deeper than {MAX_DEPTH} levels") from exc
    if not isinstance(doc, dict):
        raise TwinError("JSON body must be an object")
    return doc


def strip_read_only(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop ``$version`` and ``$metadata`` a client echoed back from a twin it read."""
    return {k: v for k, v in doc.items() if k not in ("$version", "$metadata")}


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> bool:
    """Apply ``patch`` to ``target`` in place (``null`` deletes); return whether anything changed."""
    changed = False
    for key, value in patch.items():
        if value is None:
            if key in target:
                del target[key]
                changed = True
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                current = {}
                target[key] = current
                changed = True
            if merge_patch(current, value):
                changed = True
        elif target.get(key, object()) != value or type(target.get(key)) is not type(value):
            target[key] = value
            changed = True
    return changed


def check_size(section: str, doc: dict[str, Any]) -> None:
    limit = MAX_SECTION_BYTES[section]
    if compact_size(doc) > limit:
        raise TwinError(f"{section} would exceed {limit} bytes", status=400)


def new_twin(now: float) -> dict[str, Any]:
    """The stored twin of a new device."""
    stamp = iso_now(now)
    return {
        "tags": {},
        "desired": {},
        "reported": {},
        "desiredVersion": 1,
        "reportedVersion": 1,
        "version": 1,
        "desiredUpdated": stamp,
        "reportedUpdated": stamp,
    }
