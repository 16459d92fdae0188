"""The app's flash ring, package unpacker, config loader and folder removal run in MicroPython's
own interpreter (the WebAssembly port, `hostemu run --runtime vm`): what CPython would accept
but a board might not (struct.pack_into, readinto on slices, readline(limit), listdir)."""

from __future__ import annotations

import hashlib

import pytest
from fw_support import build_package, power_off

from hostemu.testing import BoardProcess

# The VM tier is part of make test: without Node or the VM it fails, it does not skip.
pytestmark = pytest.mark.vm

SCRIPT = r'''
import os, hashlib, binascii
from app.offline_queue import FlashQueue
q = FlashQueue("q.bin", 4, 64)
for n in range(6):
    q.push(b"m%d" % n)
q2 = FlashQueue("q.bin", 4, 64)
out = []
while len(q2):
    out.append(q2.peek())
    q2.pop()
print("RING", b",".join(out).decode(), q2.drops)
from app import fwupdate
print("VERSION", fwupdate.unpack(256))
with open("app.new/version.py") as f:
    print("STAGED", f.read().strip())
h = hashlib.sha256()
h.update(memoryview(b"abc")[:2])
print("SHA", binascii.hexlify(h.digest()).decode())
import fwguard
fwguard.rmtree("app.new")
print("GONE", "app.new" not in os.listdir())
from app import config
print("CFG", config.load()[1])
print("DONE")
'''


def test_app_parts_run_in_micropython(tmp_path):
    board = BoardProcess(tmp_path / "b", "esp32", main=SCRIPT, files={"fw.part": build_package("9.9.9")},
                         runtime="vm", max_resets=0)
    board.start()
    try:
        board.expect("^DONE", 90)
    finally:
        power_off(board)
    out = board.output
    assert "RING m2,m3,m4,m5 2" in out
    assert "VERSION 9.9.9" in out and 'STAGED VERSION = "9.9.9"' in out
    assert "SHA " + hashlib.sha256(b"ab").hexdigest() in out
    assert "GONE True" in out and "CFG config.json is missing" in out
