"""The `localhub` command: offline device management before the first serve, then the commands
that talk to a running hub."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from localhub.cli.main import main
from localhub.protocol import auth
from localhub.protocol.rights import Right
from localhub.storage import state as state_mod
from localhub.testing import HubProcess
from localhub_rawclient import connect_device


def run(state: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--state", str(state), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_offline_then_against_a_running_hub(tmp_path: Path) -> None:
    state = tmp_path / "hub"
    created = json.loads(run(state, "device", "create", "cli-dev"))
    assert created["deviceId"] == "cli-dev" and created["connectionState"] == "Disconnected"
    assert "cli-dev" in run(state, "device", "list")
    exported = tmp_path / "ca.pem"
    run(state, "ca", "--export", str(exported))
    assert exported.read_text().startswith("-----BEGIN CERTIFICATE-----")

    with HubProcess(state) as hub:
        assert hub.ca_pem == exported.read_text()  # the CA made offline is the one served
        cs = run(state, "device", "connection-string", "cli-dev").strip()
        assert cs == f"HostName={hub.host};DeviceId=cli-dev;SharedAccessKey={created['authentication']['symmetricKey']['primaryKey']}"
        assert run(state, "device", "connection-string", "cli-dev", "--sdk").strip() == cs + f";GatewayHostName={hub.host}"
        token = run(state, "sas", "--device", "cli-dev", "--ttl", "600").strip()
        parsed = auth.verify_device_token(token, "cli-dev", [hub.device_key("cli-dev")],
                                          frozenset({hub.host}), time.time())
        assert 590 < parsed.expiry - time.time() <= 600
        service_token = run(state, "sas").strip()
        assert "skn=iothubowner" in service_token
        policies = state_mod.load_policies(state)
        listed = run(state, "policies")
        assert re.search(r"^registryRead +RegistryRead$", listed, re.M)
        assert re.search(r"^device +DeviceConnect$", listed, re.M)
        # the token-service pattern: the device policy signs a token for one device
        gateway = run(state, "sas", "--device", "cli-dev", "--policy", "device").strip()
        assert auth.verify_device_token(gateway, "cli-dev", [], frozenset({hub.host}), time.time(),
                                        policies).key_name == "device"
        reader = run(state, "sas", "--policy", "registryRead", "--scope", "/devices/cli-dev").strip()
        with pytest.raises(auth.AuthError, match="cover"):
            auth.verify_service_token(reader, policies, frozenset({hub.host}), time.time(),
                                      Right.REGISTRY_READ, "/devices")
        assert "SharedAccessKeyName=service;" in run(state, "connection-string", "--policy", "service")

        run(state, "twin", "update", "cli-dev", "--desired", '{"led": "on"}', "--tags", '{"room": 4}')
        twin = json.loads(run(state, "twin", "show", "cli-dev"))
        assert twin["properties"]["desired"]["led"] == "on" and twin["tags"] == {"room": 4}

        assert "queued" in run(state, "c2d", "send", "cli-dev", "hello", "--prop", "kind=greeting")
        client = connect_device(hub, "cli-dev")
        client.subscribe("devices/cli-dev/messages/devicebound/#")
        from localhub.protocol.mqtt_codec import Publish
        msg = client.expect(Publish)
        assert msg.payload == b"hello" and "kind=greeting" in msg.topic
        client.close()

        result = CliRunner().invoke(main, ["--state", str(state), "method", "invoke", "cli-dev",
                                           "reboot", "--timeout", "5"])
        assert result.exit_code != 0 and "404" in result.output

        run(state, "device", "delete", "cli-dev")
        assert "cli-dev" not in run(state, "device", "list")
