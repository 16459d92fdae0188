"""Device code sees MicroPython's modules, not CPython's: imports, Wi-Fi, sockets, TLS."""

import pytest

from hostemu.testing import BoardProcess

JOIN = """
import network, time
wlan = network.WLAN(network.STA_IF)
wlan.active(True)
wlan.connect("hostemu", "hostemu")
while not wlan.isconnected():
    time.sleep_ms(20)
"""


def run_device(tmp_path, script, **kwargs):
    with BoardProcess(tmp_path / "dev", main=script, install=False, **kwargs) as run:
        code = run.wait(60)
        return code, run.output


def test_cpython_only_modules_are_refused_and_guards_take_the_board_path(tmp_path):
    script = """
for name in ("hmac", "urllib", "typing", "logging", "threading", "dataclasses", "os.path"):
    try:
        __import__(name)
        print(name, "imported")
    except ImportError as exc:
        print(name, "refused:", exc)
try:
    from typing import Optional
except ImportError:
    print("typing guard: board path")
import os, sys, time, json, binascii, ubinascii, utime
print("has os.path:", hasattr(os, "path"), "has time.monotonic:", hasattr(time, "monotonic"))
print("has ticks:", hasattr(time, "ticks_ms"), "platform:", sys.platform, "u-alias:", utime is time)
from micropython import const
print("const", const(7))
"""
    code, output = run_device(tmp_path, script)
    assert code == 0, output
    for name in ("hmac", "urllib", "typing", "logging", "threading", "dataclasses", "os.path"):
        assert f"{name} refused: no module named '{name}'" in output
    assert "typing guard: board path" in output
    assert "has os.path: False has time.monotonic: False" in output
    assert "has ticks: True platform: esp32 u-alias: True" in output
    assert "const 7" in output


def test_board_files_import_and_absolute_paths_are_board_paths(tmp_path):
    files = {"lib/helper/__init__.py": "VALUE = 41\n", "lib/helper/more.py": "from . import VALUE\nNEXT = VALUE + 1\n"}
    script = """
from helper.more import NEXT
import os
print("next", NEXT)
with open("/data.txt", "w") as f:
    f.write("on the board")
print(sorted(os.listdir("/")), os.stat("/data.txt")[6])
"""
    code, output = run_device(tmp_path, script, files=files)
    assert code == 0, output
    assert "next 42" in output
    assert "['data.txt', 'lib', 'main.py'] 12" in output
    assert (tmp_path / "dev" / "data.txt").read_text() == "on the board"


def test_wifi_wrong_password_and_missing_network(tmp_path):
    script = """
import network, time
wlan = network.WLAN(network.STA_IF)
wlan.active(True)
for ssid, key in (("home", "wrong"), ("elsewhere", "x"), ("home", "secret")):
    wlan.connect(ssid, key)
    while wlan.status() == network.STAT_CONNECTING:
        time.sleep_ms(20)
    print(ssid, key, wlan.status(), wlan.isconnected())
"""
    code, output = run_device(tmp_path, script, networks={"home": "secret"})
    assert code == 0, output
    assert "home wrong 202 False" in output
    assert "elsewhere x 201 False" in output
    assert "home secret 1010 True" in output


def test_sockets_need_the_link(tmp_path, tls_echo_server):
    # Without Wi-Fi a name does not resolve (lwIP's EAI_FAIL) and nothing connects; an address
    # literal is parsed without asking anyone, as lwIP does.
    script = f"""
import socket
try:
    socket.getaddrinfo("localhost", {tls_echo_server.port})
except OSError as exc:
    print("no link:", exc.args[0])
addr = socket.getaddrinfo("127.0.0.1", {tls_echo_server.port})[0][-1]
s = socket.socket()
try:
    s.connect(addr)
except OSError as exc:
    print("no connect:", exc.args[0])
"""
    code, output = run_device(tmp_path, script)
    assert "no link: -202" in output
    assert "no connect: 103" in output  # ECONNABORTED


def test_tls_with_ssl_context_checks_the_certificate(tmp_path, tls_echo_server, test_certificates):
    from tls_support import make_certificates

    other_ca = make_certificates(tmp_path / "other", "some other CA").ca_der
    script = JOIN + f"""
import socket, ssl, select
addr = socket.getaddrinfo("127.0.0.1", {tls_echo_server.port}, 0, socket.SOCK_STREAM)[0][-1]

def connect(cadata, hostname="localhost"):
    s = socket.socket()
    s.connect(addr)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    print("default verify", ctx.verify_mode)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=cadata)
    return ctx.wrap_socket(s, server_hostname=hostname)

tls = connect({test_certificates.ca_der!r})
print("wrote", tls.write(b"hello board\\n"))
print("line", tls.readline())
tls.setblocking(False)
print("idle read", tls.read(10), tls.readinto(bytearray(4)))
poller = select.poll()
poller.register(tls, select.POLLIN)
tls.write(b"xyz")
print("polled", len(poller.poll(2000)))
buf = bytearray(8)
n = tls.readinto(buf)
print("got", bytes(buf[:n]))
tls.close()
for label, cadata, host in (("wrong CA", {other_ca!r}, "localhost"), ("wrong name", {test_certificates.ca_der!r}, "hub.example"),
                            ("no name", {test_certificates.ca_der!r}, None), ("PEM", {test_certificates.ca_pem!r}, "localhost")):
    try:
        connect(cadata, host)
        print(label, "accepted")
    except ValueError as exc:
        print(label, "refused:", exc.args[0].strip())
"""
    code, output = run_device(tmp_path, script)
    assert code == 0, output
    assert "default verify 0" in output  # CERT_NONE: micropython-lib's ssl.py verifies nothing unless told
    assert "wrote 12" in output
    assert "line b'hello board\\n'" in output
    assert "idle read None None" in output
    assert "polled 1" in output
    assert "got b'xyz'" in output
    # What the unix port's mbedTLS raises (tests/unix checks the same against the real one).
    assert "wrong CA refused: The certificate is not correctly signed by the trusted CA" in output
    assert "wrong name refused: The certificate Common Name (CN) does not match with the expected CN" in output
    assert "no name refused: CERT_REQUIRED requires server_hostname" in output
    assert "PEM refused: invalid cert" in output


def test_legacy_wrap_socket_does_not_check_unless_asked(tmp_path, tls_echo_server, test_certificates):
    script = JOIN + f"""
import socket, ssl
addr = socket.getaddrinfo("127.0.0.1", {tls_echo_server.port})[0][-1]
s = socket.socket(); s.connect(addr)
tls = ssl.wrap_socket(s, server_hostname="localhost")
tls.write(b"a\\n"); print("unchecked", tls.readline())
s = socket.socket(); s.connect(addr)
tls = ssl.wrap_socket(s, server_hostname="localhost", cert_reqs=ssl.CERT_REQUIRED, cadata={test_certificates.ca_der!r})
tls.write(b"b\\n"); print("checked", tls.readline())
"""
    code, output = run_device(tmp_path, script)
    assert code == 0, output
    assert "unchecked b'a\\n'" in output
    assert "checked b'b\\n'" in output
    assert "TLS without certificate verification" in output


@pytest.mark.parametrize("board, expected", [("esp32", "esp32"), ("esp8266", "esp8266"), ("esp32c3", "esp32")])
def test_sys_platform_and_heap_follow_the_profile(tmp_path, board, expected):
    script = "import sys, gc\nbefore = gc.mem_alloc()\nkeep = bytearray(20000)\nprint(sys.platform, gc.mem_alloc() - before >= 20000, gc.mem_free() + gc.mem_alloc())\n"
    from boardkit import profiles

    code, output = run_device(tmp_path, script, board=board)
    assert code == 0, output
    platform, grew, total = output.split()[-3:]
    assert (platform, grew) == (expected, "True")
    # The ints made while evaluating the sum are themselves on the heap.
    assert abs(int(total) - profiles.load(board).heap_bytes) < 256
