"""The app's pure parts under CPython, in a scratch board folder: config validation, the flash
ring's geometry and persistence, the firmware package parser. (Behaviour on a board, against the
hub, is in the other test_fw_* modules.)"""

from __future__ import annotations

import json
import sys

import pytest
from fw_support import REPO, build_package

sys.path.insert(0, str(REPO / "firmware"))

from app import config, fwupdate  # noqa: E402
from app.offline_queue import FlashQueue  # noqa: E402

GOOD = {"wifi": {"ssid": "net", "password": "pw"},
        "connection_string": "HostName=h.example;DeviceId=d;SharedAccessKey=c2VjcmV0c2VjcmV0",
        "ca_file": "ca.der"}
WITHOUT_CS = {k: v for k, v in GOOD.items() if k != "connection_string"}
DPS = {"id_scope": "0ne00AB12CD", "registration_id": "node-7", "symmetric_key": "c2VjcmV0c2VjcmV0"}


@pytest.fixture
def board_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ca.der").write_bytes(b"0\x82\x00\x00")
    return tmp_path


@pytest.mark.parametrize("content, reason", [
    (None, "config.json is missing"),
    ("{not json", "config.json is not valid JSON"),
    ("[1]", "config.json must be a JSON object"),
    ('{"wifi": {"ssid": "x"}}', "config.json: connection_string (or dps) is missing"),
    ('{"connection_string": "x"}', "config.json: wifi.ssid is missing"),
    (json.dumps(dict(GOOD, connection_string="HostName=h;DeviceId=d")),
     "config.json: connection_string: "),
    (json.dumps(dict(GOOD, ca_file="other.pem")), "config.json: ca_file other.pem is missing"),
    (json.dumps(dict(GOOD, telemetry_interval=0)), "config.json: telemetry_interval must be a whole number in 1..86400"),
    (json.dumps(dict(GOOD, queue_slots="8")), "config.json: queue_slots must be a whole number"),
    (json.dumps(dict(GOOD, dps=DPS)), "config.json: give connection_string or dps, not both"),
    (json.dumps(dict(WITHOUT_CS, dps="0ne1")), "config.json: dps.must be an object"),
    (json.dumps(dict(WITHOUT_CS, dps={**DPS, "id_scope": ""})), "config.json: dps.id_scope is missing"),
    (json.dumps(dict(WITHOUT_CS, dps={**DPS, "group_key": "c2VjcmV0"})),
     "config.json: dps.needs symmetric_key or group_key (one of them)"),
    (json.dumps(dict(WITHOUT_CS, dps={**DPS, "symmetric_key": "c2Vj%%%"})), "config.json: dps.symmetric_key is not base64"),
])
def test_config_problems_are_named_without_the_key(board_dir, content, reason):
    if content is not None:
        (board_dir / "config.json").write_text(content)
    cfg, problem = config.load()
    assert cfg is None and problem.startswith(reason)
    assert "c2VjcmV0" not in problem


def test_a_dps_config_loads_and_a_factory_reset_keeps_it(board_dir):
    (board_dir / "config.json").write_text(json.dumps(dict(WITHOUT_CS, dps=DPS, report_interval=60)))
    cfg, problem = config.load()
    assert problem is None and cfg["dps"] == DPS and "connection_string" not in cfg
    config.factory_reset()
    assert json.loads((board_dir / "config.json").read_text()) == dict(WITHOUT_CS, dps=DPS)


def test_config_defaults_and_factory_reset_keep_identity_only(board_dir):
    (board_dir / "config.json").write_text(json.dumps(dict(GOOD, telemetry_interval=3, extra=1)))
    cfg, problem = config.load()
    assert problem is None and cfg["telemetry_interval"] == 3 and cfg["queue_slots"] == 64
    config.factory_reset()
    assert json.loads((board_dir / "config.json").read_text()) == GOOD


def test_flash_ring_keeps_order_survives_reopen_and_drops_the_oldest(board_dir):
    ring = FlashQueue("q.bin", 4, 64)
    for n in range(6):
        ring.push(b"m%d" % n)
    assert (len(ring), ring.drops) == (4, 2)
    ring.pop()
    again = FlashQueue("q.bin", 4, 64)  # a reset: the header on flash is the truth
    assert (len(again), again.drops) == (3, 2)
    out = []
    while len(again):
        out.append(again.peek())
        again.pop()
    assert out == [b"m3", b"m4", b"m5"]
    assert (board_dir / "q.bin").stat().st_size == 16 + 4 * 64
    assert again.push(b"x" * 63) is False and again.oversize == 1
    assert FlashQueue("q.bin", 8, 64).count == 0  # other geometry: started afresh


def test_firmware_package_parser_checks_what_it_unpacks(board_dir):
    (board_dir / "app").mkdir()
    good = build_package("2.0.0")
    (board_dir / fwupdate.PACKAGE).write_bytes(good)
    assert fwupdate.unpack(256) == "2.0.0"
    assert (board_dir / "app.new" / "version.py").read_text() == 'VERSION = "2.0.0"\n'
    for bad, reason in [
        (b"ZIP\n", "not an MPYFW1 package"),
        (good[:-1], "package shorter than its manifest"),
        (good + b"!", "package longer than its manifest"),
        (b'MPYFW1\n{"version": "1", "files": [["../boot.py", 1]]}\nx', "bad file name in package"),
        (b'MPYFW1\n{"version": "1", "files": [["a.py", 1]]}\nx', "package has no version.py"),
    ]:
        (board_dir / fwupdate.PACKAGE).write_bytes(bad)
        with pytest.raises(fwupdate.UpdateError, match=reason.replace(".", r"\.")):
            fwupdate.unpack(256)
    with pytest.raises(fwupdate.UpdateError):
        fwupdate.parse_request({"url": "http://x/y", "sha256": "0" * 64})
    with pytest.raises(fwupdate.UpdateError):
        fwupdate.parse_request({"url": "https://x/y", "sha256": "zz" * 32})
