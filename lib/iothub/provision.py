"""Device Provisioning Service (DPS) registration over MQTT: where a device with an ID scope,
a registration id and a symmetric key belongs (an IoT Central app's devices always start here).

``register`` connects to DPS (client id = registration id, user name
``{idScope}/registrations/{registrationId}/api-version=2019-03-31``, a SAS for
``{idScope}/registrations/{registrationId}`` signed with the key), publishes the register
request, polls the operation at the retry-after DPS gives, and returns the assigned hub and
device id; build an ``IoTHubClient`` from ``connection_string(result, key)``. ``cached`` keeps
the answer on flash so a reboot does not register again. For an enrollment group, the device's
key is ``derive_key(group_key, registration_id)``.

Optional: nothing else imports it; it costs its bytecode only when an app provisions, and its
MQTT client, TLS context and buffers are garbage once it returns.
"""

import json

from iothub import transient
from iothub.errors import AuthError, IoTHubError, ProtocolError

sas = transient("iothub.sas")  # held by this module only: it goes when this module goes

GLOBAL_ENDPOINT = "global.azure-devices-provisioning.net"
API_VERSION = "2019-03-31"
_RESPONSES = "$dps/registrations/res/"
_TOKEN_TTL = 3600


class ProvisioningError(IoTHubError):
    """DPS answered with an error (``status``: its code) or ended the registration unassigned."""

    def __init__(self, status, what):
        IoTHubError.__init__(self, what)
        self.status = status


def derive_key(group_key, registration_id):
    """The key a device of a symmetric-key enrollment group signs with (base64 text)."""
    if isinstance(group_key, str):
        import binascii

        group_key = binascii.a2b_base64(group_key.encode())
    return sas.b64encode(sas.hmac_sha256(group_key, registration_id))


def connection_string(result, key):
    """The hub connection string for what ``register`` returned."""
    return "HostName=" + result["hub"] + ";DeviceId=" + result["device_id"] + ";SharedAccessKey=" + key


def _answer(topic):
    """``$dps/registrations/res/{status}/?$rid=..&retry-after=..`` -> (status, rid, retry-after)."""
    from iothub import transient

    decode_bag = transient("iothub.topics").decode_bag

    rest = topic[len(_RESPONSES):]
    cut = rest.find("/")  # no str.partition: not every MicroPython build has it
    status, query = (rest, "") if cut < 0 else (rest[:cut], rest[cut + 1:])
    if not status.isdigit():
        raise ProtocolError("DPS answer without a status")
    bag = decode_bag(query[1:] if query.startswith("?") else query)
    retry = bag.get("retry-after")
    return int(status), bag.get("$rid"), int(retry) if retry and retry.isdigit() else None


def register(id_scope, registration_id, key, ca, host=GLOBAL_ENDPOINT, port=8883, model_id=None,
             clock=None, timeout=60, sock_factory=None, transport=None):
    """Register and wait for the assignment: ``{"hub", "device_id", "substatus"}``.

    ``ca``: the DPS server's CA (DER bytes, as for ``IoTHubClient``). ``model_id``: a Plug and
    Play model id, sent in the registration payload (IoT Central reads it). The clock must be
    set (the SAS expires). Raises ``AuthError`` (DPS refused the key), ``ProvisioningError``,
    ``OSError`` (network), ``TimeoutError_`` after ``timeout`` seconds.
    """
    from iothub.errors import TimeoutError_
    from iothub.mqtt import MQTTClient, MQTTException

    if clock is None:
        from iothub.clock import SystemClock

        clock = SystemClock()
    token = sas.token(id_scope + "/registrations/" + registration_id, key, clock.time() + _TOKEN_TTL,
                      "registration")
    user = id_scope + "/registrations/" + registration_id + "/api-version=" + API_VERSION
    if transport is None:
        tls_context = transient("iothub.net").tls_context

        transport = MQTTClient(registration_id, host, port, user, token, 60, tls_context(ca),
                               bufsize=1024, sock_factory=sock_factory, timeout=min(timeout, 30))
    answers = []
    transport.set_callback(lambda topic, msg: answers.append((topic, msg)))
    try:
        transport.connect(True)
    except MQTTException as e:
        raise AuthError(e.args[0] if e.args else 5, "DPS refused the registration")
    deadline = clock.ticks_add(clock.ticks_ms(), int(timeout * 1000))
    try:
        transport.subscribe(_RESPONSES + "#", 1)
        payload = {"registrationId": registration_id}
        if model_id:
            payload["payload"] = {"modelId": model_id}
        payload = json.dumps(payload)
        rid = 1
        operation = None
        transport.publish("$dps/registrations/PUT/iotdps-register/?$rid=1", payload, qos=1)
        while True:
            if clock.ticks_diff(deadline, clock.ticks_ms()) <= 0:
                raise TimeoutError_("no assignment from DPS in %d s" % timeout)
            transport.wait_msg()
            while answers:
                topic, msg = answers.pop(0)
                topic = topic.decode() if isinstance(topic, bytes) else topic
                if not topic.startswith(_RESPONSES):
                    continue
                status, got_rid, retry = _answer(topic)
                if got_rid != str(rid):
                    continue  # an answer to an earlier request
                body = json.loads(msg) if msg else {}
                if status == 200 and body.get("status") == "assigned":
                    state = body.get("registrationState") or {}
                    if not state.get("assignedHub") or not state.get("deviceId"):
                        raise ProtocolError("DPS assigned no hub or device id")
                    return {"hub": state["assignedHub"], "device_id": state["deviceId"],
                            "substatus": state.get("substatus")}
                waiting = status in (200, 202) and body.get("status") in ("assigning", None)
                if waiting or status >= 429:  # still assigning, or throttled: ask again later
                    operation = body.get("operationId") or operation
                    clock.sleep_ms((retry or 3) * 1000)
                    rid += 1
                    if operation is None:  # throttled before DPS took the request
                        transport.publish("$dps/registrations/PUT/iotdps-register/?$rid=%d" % rid, payload, qos=1)
                    else:
                        transport.publish("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=%d&operationId=%s"
                                          % (rid, operation), b"", qos=1)
                    continue
                raise ProvisioningError(status, "DPS: %s" % (body.get("message") or body.get("status") or status))
    finally:
        try:
            transport.disconnect()
        except Exception:  # the link may be gone already; nothing more to release
            pass


def cached(path, id_scope, registration_id, key, ca, force=False, **kw):
    """``register``, unless ``path`` (a JSON file on flash) holds an assignment for this ID scope
    and registration id (then ``result["cached"]`` is True): a reboot connects to the hub it was
    given without asking DPS again.
    ``force``: register again (the hub refused the cached assignment, say)."""
    if not force:
        try:
            with open(path) as f:
                saved = json.load(f)
            if saved.get("scope") == id_scope and saved.get("registration_id") == registration_id:
                saved["cached"] = True  # said, not stored
                return saved
        except (OSError, ValueError):
            pass
    result = register(id_scope, registration_id, key, ca, **kw)
    result["scope"] = id_scope
    result["registration_id"] = registration_id
    with open(path, "w") as f:
        json.dump(result, f)
    return result
