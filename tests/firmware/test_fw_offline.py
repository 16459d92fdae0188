"""The offline queue on flash, against a local hub that goes away: messages made during an
outage arrive after it, in order, none lost; a full ring drops the oldest and counts the drops;
the ring survives a power cut."""

from __future__ import annotations

from fw_support import FAST, Board, bodies, power_off, provision_board, reported, wait_for


def _first_seen(seqs: list[int]) -> list[int]:
    # Delivery is at-least-once: a message whose PUBACK the outage swallowed comes twice.
    seen: list[int] = []
    for seq in seqs:
        if seq not in seen:
            seen.append(seq)
    return seen


def test_an_outage_of_10_s_loses_nothing_and_keeps_the_order(own_hub, tmp_path, board_runtime):
    hub = own_hub
    folder = provision_board(hub, tmp_path / "b", "outage", interval=1, **FAST)
    with Board(folder, runtime=board_runtime) as board:
        board.expect_json("hub", 30, connected=True)
        hub.wait_telemetry("outage", 3, 15)
        hub.stop()
        board.expect_json("hub", 10, connected=False)
        # The board keeps making a message a second; 10 of them go to flash while the hub is away,
        # through six or more refused reconnects (FAST backs off to 1.5 s at most).
        last = board.expect_json("telemetry", 30, queued=True, pending=10)
        hub.start()
        board.expect_json("hub", 30, connected=True)
        board.expect_json("queue_drained", 30)
        wanted = last["seq"] + 2
        wait_for(lambda: max(b["seq"] for b in bodies(hub, "outage")) >= wanted, 20, "messages after the outage")
    seqs = [b["seq"] for b in bodies(hub, "outage")]
    order = _first_seen(seqs)
    assert order == list(range(1, max(seqs) + 1)), seqs  # every one, in order, no gap
    assert max(seqs) >= wanted
    twin = reported(hub, "outage")
    assert twin["queue"]["dropped"] == 0


def test_a_full_ring_drops_the_oldest_counts_it_and_survives_a_power_cut(own_hub, tmp_path, board_runtime):
    hub = own_hub
    folder = provision_board(hub, tmp_path / "b", "ring", interval=1, queue_slots=5, **FAST)
    board = Board(folder, runtime=board_runtime)
    run = board.__enter__()
    try:
        run.expect_json("hub", 30, connected=True)
        hub.wait_telemetry("ring", 2, 15)
        hub.stop()
        run.expect_json("hub", 10, connected=False)
        last = run.expect_json("telemetry", 30, queued=True, drops=3)
    finally:
        power_off(run)
    assert last["pending"] == 5
    hub.start()
    with Board(folder, runtime=board_runtime) as again:
        booted = again.expect_json("booted", 30)
        again.expect_json("queue_drained", 30)
        wait_for(lambda: any(b["boot"] == 2 for b in bodies(hub, "ring")), 15, "a message of the new boot")
        twin = wait_for(lambda: "queue" in reported(hub, "ring") and reported(hub, "ring"), 15, "queue reported")
    assert booted["boot"] == 2 and booted["queued"] == 5 and booted["drops"] == 3
    messages = bodies(hub, "ring")
    first_boot = _first_seen([b["seq"] for b in messages if b["boot"] == 1])
    kept = list(range(last["seq"] - 4, last["seq"] + 1))
    assert first_boot[-5:] == kept  # the five newest survived the power cut, in order
    delivered_before = first_boot[:-5]
    assert delivered_before == list(range(1, len(delivered_before) + 1))
    # What is missing between them was dropped from the full ring (3, counted) or was in flight
    # in RAM when the power went.
    missing = last["seq"] - 5 - len(delivered_before)
    assert 3 <= missing <= 3 + 4
    boots = [b["boot"] for b in messages]
    assert boots == sorted(boots)  # the old boot's messages all came before the new boot's
    assert twin["queue"]["dropped"] == 3
