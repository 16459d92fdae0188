"""A heap that runs dry for a moment costs the board nothing: a MemoryError in a duty of the loop
is collected and the duty runs again, with no reset. On MicroPython's unix port, where running
out of heap is real: the host leaves the heap without a free block when the facts report reads
the link's RSSI (`.hostemu/exhaust_heap`), so the report's next allocation fails.
"""

from fw_support import FAST, Board, provision_board, reported, wait_for


def test_a_memory_error_in_the_facts_report_costs_no_reset_and_no_telemetry(own_hub, tmp_path):
    hub = own_hub
    folder = provision_board(hub, tmp_path / "b", "lowmem", interval=1, report_interval=5, **FAST)
    with Board(folder, runtime="unix") as board:
        board.expect_json("hub", 30, connected=True)
        before = wait_for(lambda: reported(hub, "lowmem").get("device"), 20, "the first facts report")
        version = reported(hub, "lowmem")["$version"]
        sent = len(hub.telemetry("lowmem"))

        (folder / ".hostemu" / "exhaust_heap").write_text("network.status")
        low = board.expect_json("low_memory", 20)
        assert low["times"] == 1 and low["free"] > 0  # collected: the garbage that filled it is gone

        # The report that failed stays due and goes at the next loop; telemetry never stopped.
        wait_for(lambda: reported(hub, "lowmem")["$version"] > version, 15, "a facts report after it")
        wait_for(lambda: len(hub.telemetry("lowmem")) >= sent + 3, 15, "telemetry after it")
        after = reported(hub, "lowmem")["device"]
        assert board.events("booted") and len(board.events("booted")) == 1, "the board was reset"
        assert after["bootCount"] == before["bootCount"]
        assert board.events("low_memory") == [low]
