"""Shared access signatures: generate and verify IoT Hub SAS tokens. Pure; the clock is passed in.

Token: ``SharedAccessSignature sr={urlenc(resource)}&sig={urlenc(b64(hmac))}&se={expiry}[&skn={policy}]``
with ``hmac = HMAC-SHA256(b64decode(key), urlenc(resource) + "\\n" + expiry)``.

Resource checks follow IoT Hub: a device token's ``sr`` is ``{host}/devices/{deviceId}``; a
service token's ``sr`` is ``{host}`` (the Python service SDK puts ``host:port`` there), or a path
under it that narrows what the token opens (rights.py). The host
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
from typing import Mapping
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from . import rights
from .rights import Policy, Right

SAS_PREFIX = "SharedAccessSignature "
_SCHEMES = ("https://", "amqps://", "sb://")


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
    for scheme in _SCHEMES:
        if name.startswith(scheme):
            name = name[len(scheme):]
    if name.startswith("["):  # IPv6 literal
        return name.split("]")[0] + "]"
    return name.split(":")[0]


def host_matches(candidate: str, names: frozenset[str]) -> bool:
    return _host_only(candidate) in names


def sign_with_key_text(key: str, signed_resource: str, expiry: int) -> str:
    """Service Bus and Event Hubs sign with the key's text as the HMAC key, where IoT Hub signs
    with the bytes the key's base64 decodes to: what azure-eventhub does for the Event
    Hub-compatible endpoint, with the IoT Hub policy's key."""
    message = (signed_resource + "\n" + str(expiry)).encode("utf-8")
    return base64.b64encode(hmac.new(key.encode("utf-8"), message, hashlib.sha256).digest()).decode("ascii")


def _check_signature(token: SasToken, keys: list[str], key_text: bool = False) -> bool:
    for key in keys:
        if not key:
            continue
        try:
            expected = (sign_with_key_text if key_text else sign)(key, token.signed_resource, token.expiry)
        except AuthError:
            continue
        if hmac.compare_digest(expected.encode(), token.signature.encode()):
            return True
    return False


def _split_resource(token: SasToken, names: frozenset[str]) -> str:
    """The path part of the token's ``sr`` (no host); AuthError if the host is not this hub.
    An Event Hub client's ``sr`` is ``sb://{host}/{entity}``."""
    resource = token.resource.rstrip("/")
    for scheme in _SCHEMES:
        if resource.lower().startswith(scheme):
            resource = resource[len(scheme):]
    host, _, path = resource.partition("/")
    if not host_matches(host, names):
        raise AuthError("SAS resource does not name this hub")
    return path


def _signed_by_policy(token: SasToken, policies: Mapping[str, Policy], need: Right,
                      now: float, key_text: bool = False) -> Policy:
    policy = policies.get(token.key_name or "")
    if policy is None:
        raise AuthError("unknown shared access policy")
    if token.expiry <= now:
        raise AuthError("SAS token expired")
    if not _check_signature(token, [policy.key], key_text):
        raise AuthError("SAS signature does not match the policy key")
    if need not in policy.rights:
        raise AuthError(f"policy {policy.name} does not grant {rights.describe(need)}")
    return policy


def verify_device_token(token_text: str, device_id: str, keys: list[str],
                        names: frozenset[str], now: float,
                        policies: Mapping[str, Policy] | None = None,
                        module_id: str | None = None) -> SasToken:
    """Check a device token for ``device_id`` (or its module ``module_id``): signed by one of
    its ``keys`` with ``sr`` naming the device (``.../devices/{d}/modules/{m}``), or (``skn``
    set) by a policy granting DeviceConnect, scoped to cover it.

    Returns the parsed token (callers schedule a disconnect at ``expiry``); raises AuthError.
    """
    token = parse_sas(token_text)
    path = _split_resource(token, names)
    device_path = f"devices/{device_id}" + (f"/modules/{module_id}" if module_id else "")
    if token.key_name:
        if not rights.scope_covers(path, device_path):
            raise AuthError("SAS resource does not cover this device")
        _signed_by_policy(token, policies or {}, Right.DEVICE_CONNECT, now)
        return token
    if path.lower() != device_path.lower():
        raise AuthError("SAS resource does not name this device on this hub")
    return _fresh_and_signed(token, keys, now, "the device key")


def _fresh_and_signed(token: SasToken, keys: list[str], now: float, whose: str) -> SasToken:
    if token.expiry <= now:
        raise AuthError("SAS token expired")
    if not _check_signature(token, keys):
        raise AuthError(f"SAS signature does not match {whose}")
    return token


def verify_service_token(token_text: str, policies: Mapping[str, Policy], names: frozenset[str],
                         now: float, need: Right = Right.NONE, resource_path: str = "",
                         key_text: bool = False) -> SasToken:
    """Check a service (policy) token for a request needing ``need`` on ``resource_path``
    (the request path, e.g. ``/twins/dev1``): the policy must grant it and the token's ``sr``
    must cover the path."""
    token = parse_sas(token_text)
    if not token.key_name:
        raise AuthError("a shared access policy token (skn) is required")
    path = _split_resource(token, names)
    _signed_by_policy(token, policies, need, now, key_text)
    if not rights.scope_covers(path, resource_path):
        raise AuthError("SAS resource does not cover this request")
    return token


def derive_device_key(group_key_b64: str, registration_id: str) -> str:
    """The key a device of a symmetric-key enrollment group signs with: HMAC-SHA256 of its
    registration id under the group key (what DPS documents and the devices compute)."""
    try:
        group_key = base64.b64decode(group_key_b64, validate=True)
    except ValueError as exc:
        raise AuthError("the group key is not base64") from exc
    digest = hmac.new(group_key, registration_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_registration_token(token_text: str, id_scope: str, registration_id: str,
                              keys: list[str], now: float) -> SasToken:
    """Check a DPS registration token: ``sr`` is ``{idScope}/registrations/{registrationId}``,
    signed by one of ``keys``; ``skn`` is ``registration`` or absent (the Python SDK sends none).
    Raises AuthError."""
    token = parse_sas(token_text)
    if token.resource.lower() != f"{id_scope}/registrations/{registration_id}".lower():
        raise AuthError("SAS resource does not name this registration in this ID scope")
    if token.key_name not in (None, "", "registration"):
        raise AuthError("a registration token's skn is 'registration'")
    return _fresh_and_signed(token, keys, now, "the enrollment's key")
