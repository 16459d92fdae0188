"""A simulated board boots boot.py then main.py, keeps its filesystem across resets and tells
why it reset."""

import pytest

from hostemu.testing import BoardProcess

RESET_ONCE = """
import os, machine
print("boot", machine.reset_cause())
if "marker.txt" not in os.listdir():
    with open("marker.txt", "w") as f:
        f.write("written before reset")
    machine.reset()
with open("/marker.txt") as f:
    print("found:", f.read())
print("cause is soft reset:", machine.reset_cause() == machine.SOFT_RESET)
"""


@pytest.mark.parametrize("board", ["esp32", "esp8266"])
def test_file_written_before_reset_is_there_after_it(tmp_path, board):
    with BoardProcess(tmp_path / "dev", board, main=RESET_ONCE, install=False) as run:
        first = run.expect(r"^boot (\d+)")
        run.expect(r"hostemu: reset \(SOFT_RESET\)")
        second = run.expect(r"^boot (\d+)")
        run.expect(r"^found: written before reset$")
        run.expect(r"^cause is soft reset: True$")
        assert run.wait() == 0
    causes = {"esp32": ("1", "5"), "esp8266": ("0", "4")}[board]
    assert (first.group(1), second.group(1)) == causes


def test_boot_runs_before_main_and_a_failing_boot_stops_main(tmp_path):
    with BoardProcess(tmp_path / "ok", boot='print("in boot")\nshared = 1\n', main='print("in main")\n', install=False) as run:
        run.expect("in boot")
        run.expect("in main")
        assert run.wait() == 0
    with BoardProcess(tmp_path / "bad", boot='raise ValueError("broken boot")\n', main='print("in main")\n', install=False) as run:
        run.expect("ValueError: broken boot")
        assert run.wait() == 1
        assert "in main" not in run.output


def test_watchdog_not_fed_resets_with_wdt_cause(tmp_path):
    script = """
import machine, time
print("cause", machine.reset_cause(), machine.reset_cause() == machine.WDT_RESET)
if machine.reset_cause() != machine.WDT_RESET:
    wdt = machine.WDT(timeout=300)
    for _ in range(3):
        time.sleep_ms(100)
        wdt.feed()
    print("fed")
    time.sleep(5)
    print("not reached")
"""
    with BoardProcess(tmp_path / "dev", main=script, install=False) as run:
        run.expect("cause 1 False")
        run.expect("^fed$")
        run.expect(r"hostemu: reset \(WDT_RESET\)")
        run.expect("cause 3 True")
        assert run.wait() == 0
        assert "not reached" not in run.output


def test_rtc_starts_at_the_port_epoch_and_survives_a_soft_reset_once_set(tmp_path):
    script = """
import machine, time, network, ntptime, os
print("epoch", time.gmtime(0)[0])
before = time.time()
if machine.reset_cause() == machine.PWRON_RESET:
    print("unset clock year", time.gmtime()[0], before < 60)
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wlan.connect("hostemu", "hostemu")
    while not wlan.isconnected():
        time.sleep_ms(20)
    ntptime.settime()
    print("synced unix", time.time() + 946684800)
    machine.reset()
print("after reset year", time.gmtime()[0], "unix", time.time() + 946684800)
"""
    import time as host_time

    with BoardProcess(tmp_path / "dev", main=script, install=False) as run:
        run.expect("^epoch 2000$")
        run.expect("^unset clock year 2000 True$")
        synced = int(run.expect(r"^synced unix (\d+)").group(1))
        after = run.expect(r"^after reset year (\d+) unix (\d+)")
        assert run.wait() == 0
    assert abs(synced - host_time.time()) < 30
    assert int(after.group(1)) >= 2026 and abs(int(after.group(2)) - synced) < 30


def test_unique_id_is_stable_per_board_folder(tmp_path):
    script = 'import machine, binascii\nprint("id", binascii.hexlify(machine.unique_id()).decode())\n'
    ids = []
    for folder in ("a", "a", "b"):
        with BoardProcess(tmp_path / folder, main=script, install=False) as run:
            ids.append(run.expect(r"^id ([0-9a-f]{12})$").group(1))
            run.wait()
    assert ids[0] == ids[1] != ids[2]
