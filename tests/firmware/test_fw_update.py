"""firmwareUpdate against the local hub, the package served from the hub's blob storage
(Azurite, HTTPS checked against the hub's CA) behind a SAS URL."""

from __future__ import annotations

from fw_support import (APP_DIR, Board, app_version, build_package, provision_board, reported, serve_package, sha256,
                        wait_for)

ORIGINAL_VERSION = app_version(APP_DIR.parent)
STEPS = ["downloading", "verifying", "applying", "rebooting"]


def _statuses(board) -> list[str]:
    return [e["status"] for e in board.events("fw_status")]


def test_a_good_package_ends_current_on_the_new_version(fw_hub, tmp_path, board_runtime):
    folder = provision_board(fw_hub, tmp_path / "b", "fw-good", interval=30)
    package = build_package("1.1.0")
    url = serve_package(fw_hub, "good-1.1.0.fw", package)
    with Board(folder, runtime=board_runtime) as board:
        board.expect_json("hub", 30, connected=True)
        answer = fw_hub.invoke_method("fw-good", "firmwareUpdate",
                                      {"url": url, "sha256": sha256(package), "version": "1.1.0"}, 15)
        booted = board.expect_json("booted", 60, version="1.1.0")
        board.expect_json("fw_confirmed", 30, version="1.1.0")
        fw = wait_for(lambda: reported(fw_hub, "fw-good")["firmware"]["currentFwVersion"] == "1.1.0"
                      and reported(fw_hub, "fw-good")["firmware"], 15, "1.1.0 reported")
        statuses = _statuses(board)
    assert answer["status"] == 202
    assert statuses == ["current"] + STEPS + ["current"]
    assert fw["fwUpdateStatus"] == "current" and fw["pendingFwVersion"] == ""
    assert booted["resetCause"] == "SOFT_RESET"
    assert (folder / "app" / "version.py").read_text() == 'VERSION = "1.1.0"\n'
    assert not (folder / "app.old").exists() and not (folder / "app.new").exists()
    assert not (folder / "fw.part").exists()


def test_a_wrong_hash_or_a_broken_download_ends_in_error_on_the_old_version(fw_hub, tmp_path, board_runtime):
    folder = provision_board(fw_hub, tmp_path / "b", "fw-bad", interval=30)
    package = build_package("1.2.0")
    url = serve_package(fw_hub, "bad-1.2.0.fw", package)
    with Board(folder, runtime=board_runtime) as board:
        board.expect_json("hub", 30, connected=True)
        answer = fw_hub.invoke_method("fw-bad", "firmwareUpdate",
                                      {"url": url, "sha256": sha256(package + b"x"), "version": "1.2.0"}, 15)
        error = board.expect_json("fw_status", 30, status="error")
        board.expect_json("action_done", 10)  # until then another update is answered 409 (busy)
        fw = wait_for(lambda: reported(fw_hub, "fw-bad")["firmware"]["fwUpdateStatus"] == "error"
                      and reported(fw_hub, "fw-bad")["firmware"], 15, "error reported")
        missing = fw_hub.invoke_method("fw-bad", "firmwareUpdate",
                                       {"url": serve_package(fw_hub, "nothing.fw", None), "sha256": sha256(package)}, 15)
        error404 = board.expect_json("fw_status", 30, status="error")
        board.expect_json("action_done", 10)
        refused = fw_hub.invoke_method("fw-bad", "firmwareUpdate", {"url": "http://plain/x", "sha256": "0" * 64}, 15)
        statuses = _statuses(board)
    assert answer["status"] == 202 and missing["status"] == 202
    assert error["detail"] == "SHA-256 mismatch" and error["version"] == "1.0.0"
    assert fw["currentFwVersion"] == "1.0.0" and fw["fwUpdateSubstatus"] == "SHA-256 mismatch"
    assert error404["detail"] == "download failed: HTTP 404"
    assert refused["status"] == 400
    assert statuses == ["current", "downloading", "verifying", "error", "downloading", "error"]
    assert app_version(folder) == ORIGINAL_VERSION
    assert not (folder / "app.new").exists() and not (folder / "fw.part").exists()
    assert len(board.events("booted")) == 1  # never rebooted


def test_a_version_that_cannot_start_is_rolled_back(fw_hub, tmp_path, board_runtime):
    folder = provision_board(fw_hub, tmp_path / "b", "fw-roll", interval=30)
    package = build_package("1.3.0", {"main.py": b"raise ImportError('broken build')\n"})
    url = serve_package(fw_hub, "broken-1.3.0.fw", package)
    with Board(folder, runtime=board_runtime) as board:
        board.expect_json("hub", 30, connected=True)
        fw_hub.invoke_method("fw-roll", "firmwareUpdate", {"url": url, "sha256": sha256(package)}, 15)
        rollback = board.expect_json("fw_rollback", 60)
        board.expect_json("booted", 30, version="1.0.0")
        fw = wait_for(lambda: reported(fw_hub, "fw-roll")["firmware"]["fwUpdateStatus"] == "rolledback"
                      and reported(fw_hub, "fw-roll")["firmware"], 15, "rolledback reported")
    assert "failed to import" in rollback["reason"]
    assert fw["currentFwVersion"] == "1.0.0" and "broken build" in fw["fwUpdateSubstatus"]
    assert app_version(folder) == ORIGINAL_VERSION
    assert not (folder / "app.old").exists() and not (folder / "app.bad").exists()
