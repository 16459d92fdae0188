"""`hostemu run --runtime vm`: boot.py + main.py in MicroPython's own interpreter, with machine,
network, ntptime and esp32 answered by the same board model as the CPython runtime, and resets
handled by the same supervisor."""

from __future__ import annotations


import pytest

from hostemu.testing import BoardProcess

# The VM tier is part of make test: without Node or the VM it fails, it does not skip.
pytestmark = pytest.mark.vm

MAIN = r"""
import sys, time, machine, network, ntptime, esp32, socket
print("impl", sys.implementation.name)
print("cause", machine.reset_cause(), "soft", machine.SOFT_RESET, "pwron", machine.PWRON_RESET)
wlan = network.WLAN(network.STA_IF)
wlan.active(True)
wlan.connect("lab", "wrong")
while wlan.status() == network.STAT_CONNECTING:
    time.sleep_ms(20)
print("wrong password status", wlan.status())
wlan.connect("lab", "secret")
while not wlan.isconnected():
    time.sleep_ms(20)
print("ip", wlan.ifconfig()[0], "mac", len(wlan.config("mac")))
print("year before ntp", time.gmtime()[0])
ntptime.settime()
print("year after ntp", time.gmtime()[0])
nvs = esp32.NVS("test")
try:
    boots = nvs.get_i32("boots")
except OSError:
    boots = 0
nvs.set_i32("boots", boots + 1)
nvs.commit()
print("boots", boots + 1, "uid", machine.unique_id() == wlan.config("mac"))
pin = machine.Pin(2, machine.Pin.OUT)
pin.on()
print("pin", pin.value())
try:
    machine.Pin(99)
except ValueError as exc:
    print("bad pin", exc)
if boots == 0:
    machine.reset()
print("done")
"""


def test_board_runs_in_the_vm_and_resets_through_the_supervisor(tmp_path):
    with BoardProcess(tmp_path / "board", main=MAIN, networks={"lab": "secret"}, max_resets=2,
                      install=False, runtime="vm") as board:
        board.expect(r"^impl micropython", 30)
        first = board.expect(r"^cause (\d+) soft (\d+) pwron (\d+)", 10)
        assert first.group(1) == first.group(3)  # power-on reset
        board.expect(r"^wrong password status 202", 10)
        board.expect(r"^ip 127\.0\.0\.1 mac 6", 10)
        board.expect(r"^year before ntp 2000", 10)  # RTC unset at power-up
        assert int(board.expect(r"^year after ntp (\d+)", 10).group(1)) >= 2025
        board.expect(r"^boots 1 uid True", 10)
        board.expect(r"^pin 1", 10)
        board.expect(r"^bad pin", 10)
        second = board.expect(r"^cause (\d+) soft (\d+) pwron (\d+)", 30)
        assert second.group(1) == second.group(2)  # machine.reset() -> SOFT_RESET
        assert int(board.expect(r"^year before ntp (\d+)", 10).group(1)) >= 2025  # RTC kept
        board.expect(r"^boots 2 uid True", 10)  # NVS survived the reset
        board.expect(r"^done", 10)
        assert board.wait(30) == 0


def test_link_down_fails_sockets_in_the_vm(tmp_path):
    main = r"""
import network, socket, time
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect("hostemu", "hostemu")
while not w.isconnected():
    time.sleep_ms(20)
open("/.hostemu/wifi_down", "w").close()
print("connected", w.isconnected(), "status", w.status())
s = socket.socket()
try:
    s.connect(socket.getaddrinfo("127.0.0.1", 9, 0, socket.SOCK_STREAM)[0][-1])
except OSError as exc:
    print("connect", exc.errno)
"""
    with BoardProcess(tmp_path / "board", main=main, install=False, runtime="vm") as board:
        board.expect(r"^connected False status 200", 30)  # STAT_BEACON_TIMEOUT
        board.expect(r"^connect 103", 10)  # ECONNABORTED
        assert board.wait(30) == 0


WDT_MAIN = r"""
import time, machine, esp32
cause = machine.reset_cause()
print("cause", cause, "wdt", machine.WDT_RESET)
if cause == machine.WDT_RESET:
    part = esp32.Partition(esp32.Partition.RUNNING)
    nxt = part.get_next_update()
    buf = bytearray(4096)
    buf[0:4] = b"\xe9OTA"
    nxt.writeblocks(0, buf)
    back = bytearray(4096)
    nxt.readblocks(0, back)
    print("ota", part.info()[4], nxt.info()[4], bytes(back[:4]) == b"\xe9OTA", nxt.ioctl(5, 0))
    nxt.set_boot()
    print("boot", esp32.Partition(esp32.Partition.BOOT).info()[4])
else:
    wdt = machine.WDT(timeout=300)
    wdt.feed()
    while True:  # never fed again
        time.sleep_ms(50)
"""


def test_watchdog_resets_and_ota_partitions_in_the_vm(tmp_path):
    with BoardProcess(tmp_path / "board", main=WDT_MAIN, install=False, runtime="vm", max_resets=1) as board:
        first = board.expect(r"^cause (\d+) wdt (\d+)", 30)
        assert first.group(1) != first.group(2)
        second = board.expect(r"^cause (\d+) wdt (\d+)", 30)
        assert second.group(1) == second.group(2)  # the watchdog reset the board
        board.expect(r"^ota ota_0 ota_1 True 4096", 10)
        board.expect(r"^boot ota_1", 10)
        assert board.wait(30) == 0
