"""Shared access signatures: generate and verify IoT Hub SAS tokens. Pure; the clock is passed in.

Token: ``SharedAccessSignature sr={urlenc(resource)}&sig={urlenc(b64(hmac))}&se={expiry}[&skn={policy}]``
with ``hmac = HMAC-SHA256(b64decode(key), urlenc(resource) + "\\n" + expiry)``.

Resource checks follow IoT Hub: a device token's ``sr`` is ``{host}/devices/{deviceId}``; a
service token's ``sr`` is ``{host}`` (the Python service SDK puts ``host:port`` there). The host
must be one of the names the hub answers to; the hub compares case-insensitively and ignores a
port, so one token works whichever of its names a client dialled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote, unquote_plus

SAS_PREFIX = "SharedAccessSignature "


class AuthError(Exception):
    """A token that does not grant access; the message says why (never echoes the secret)."""


@dataclass(frozen=True)
class SasToken:
    resource: str  # decoded `sr`
    signature: str  # decoded `sig` (base64 text)
    expiry: int
    key_name: str | None
    signed_resource: str  # `sr` exactly as it appeared (what was signed)


def new_key() -> str:
    """A fresh 256-bit base64 key, as IoT Hub generates for devices and policies."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(key_b64: str, signed_resource: str, expiry: int) -> str:
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuthError("key is not valid base64") from exc
    message = (signed_resource + "\n" + str(expiry)).encode("utf-8")
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


def generate_sas(resource: str, key_b64: str, expiry: int, key_name: str | None = None) -> str:
    """Build a token for ``resource`` (e.g. ``host/devices/dev1``) valid until ``expiry`` (Unix s)."""
    sr = quote_plus(resource)
    sig = quote(sign(key_b64, sr, expiry), safe="")
    token = f"{SAS_PREFIX}sr={sr}&sig={sig}&se={expiry}"
    if key_name:
        token += f"&skn={quote(key_name, safe='')}"
    return token


def parse_sas(token: str) -> SasToken:
    """Split a token into its fields; raises AuthError when it is not a SAS token."""
    if not token.startswith(SAS_PREFIX):
        raise AuthError("not a SharedAccessSignature token")
    fields: dict[str, str] = {}
    for part in token[len(SAS_PREFIX):].strip().split("&"):
        key, sep, value = part.partition("=")
        if not sep or key in fields:
            raise AuthError("malformed SAS token field")
        fields[key] = value
    for needed in ("sr", "sig", "se"):
        if needed not in fields:
            raise AuthError(f"SAS token lacks {needed}")
    try:
        expiry = int(fields["se"])
    except ValueError as exc:
        raise AuthError("SAS expiry is not an integer") from exc
    skn = fields.get("skn")
    return SasToken(
        resource=unquote_plus(fields["sr"]),
        signature=unquote(fields["sig"]),
        expiry=expiry,
        key_name=unquote(skn) if skn is not None else None,
        signed_resource=fields["sr"],
    )


def _host_only(name: str) -> str:
    """Lower-case host without a port or scheme."""
    name = name.strip().lower()
    for scheme in ("https://", "amqps://"):
        if name.startswith(scheme):
            name = name[len(scheme):]
    if name.startswith("["):  # IPv6 literal
        return name.split("]")[0] + "]"
    return name.split(":")[0]


def host_matches(candidate: str, names: frozenset[str]) -> bool:
    return _host_only(candidate) in names


def _check_signature(token: SasToken, keys: list[str]) -> bool:
    for key in keys:
        if not key:
            continue
        try:
            expected = sign(key, token.signed_resource, token.expiry)
        except AuthError:
            continue
        if hmac.compare_digest(expected.encode(), token.signature.encode()):
            return True
    return False


def verify_device_token(token_text: str, device_id: str, keys: list[str],
                        names: frozenset[str], now: float) -> SasToken:
    """Check a device token for ``device_id`` against its primary/secondary ``keys``.

    Returns the parsed token (callers schedule a disconnect at ``expiry``); raises AuthError.
    """
    token = parse_sas(token_text)
    resource = token.resource.rstrip("/")
    host, sep, path = resource.partition("/")
    if not sep or not host_matches(host, names) or path.lower() != f"devices/{device_id}".lower():
        raise AuthError("SAS resource does not name this device on this hub")
    if token.expiry <= now:
        raise AuthError("SAS token expired")
    if not _check_signature(token, keys):
        raise AuthError("SAS signature does not match the device key")
    return token


def verify_service_token(token_text: str, policies: dict[str, str], names: frozenset[str],
                         now: float) -> SasToken:
    """Check a service (policy) token; ``policies`` maps key name to key."""
    token = parse_sas(token_text)
    if not token.key_name or token.key_name not in policies:
        raise AuthError("unknown shared access policy")
    if not host_matches(token.resource.rstrip("/").split("/")[0], names):
        raise AuthError("SAS resource does not name this hub")
    if token.expiry <= now:
        raise AuthError("SAS token expired")
    if not _check_signature(token, [policies[token.key_name]]):
        raise AuthError("SAS signature does not match the policy key")
    return token
