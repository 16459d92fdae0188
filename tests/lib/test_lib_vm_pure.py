"""The pure layer inside a real MicroPython 1.27 VM (WebAssembly port under Node).

Replays lib_pure_checks.py (the vectors) where ``str.startswith`` takes no tuple, dicts keep no
order, and there is no hmac/urllib: proves the device code, not just CPython, is right.
"""

import json
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent

# The VM tier is part of make test: without Node or the VM it fails, it does not skip.
pytestmark = pytest.mark.vm


def run_in_vm(code, extra=()):
    files = {"/lib/iothub/" + p.name: p.read_text() for p in (ROOT / "lib/iothub").glob("*.py")}
    for name in ("lib_vectors.py", "lib_pure_checks.py") + tuple(extra):
        files["/tests/" + name] = (HERE / name).read_text()
    setup = "import sys\nsys.path.insert(0, '/lib')\nsys.path.insert(0, '/tests')\n"
    steps = [setup + code] if isinstance(code, str) else [setup] + list(code)
    job = {"files": files, "code": steps}
    proc = subprocess.run(
        ["node", str(HERE / "mp_run.mjs")], input=json.dumps(job), capture_output=True, text=True, timeout=60
    )
    return proc


def test_pure_layer_vectors_pass_in_micropython():
    proc = run_in_vm(
        "import sys\nprint(sys.implementation.name, sys.implementation.version)\n"
        "import lib_pure_checks\nprint('checks', lib_pure_checks.run_all())\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "micropython (1, 27, 0" in proc.stdout
    assert "checks 11" in proc.stdout


def test_every_module_imports_in_micropython():
    names = sorted(p.stem for p in (ROOT / "lib/iothub").glob("*.py") if p.stem != "__init__")
    code = "import gc\n" + "".join("import iothub.%s\n" % n for n in names) + "gc.collect()\nprint('ok', gc.mem_alloc())\n"
    proc = run_in_vm(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


def test_transport_session_and_upload_in_micropython():
    proc = run_in_vm("import lib_vm_checks\nlib_vm_checks.run_all()\nprint('ok')\n", extra=("lib_fakes.py", "lib_vm_checks.py"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


def test_upload_keeps_no_heap_and_sizes_do_not_matter_in_micropython():
    # Heap retained after an upload, sampled in the next runPython call (see mp_run.mjs).
    mem = "import gc\ngc.collect()\nprint('mem', gc.mem_alloc())\n"
    proc = run_in_vm(
        [
            # Warm-up, small and big: imports, interned strings, and what the VM's heap grows once
            # for its first long upload (a step of about 1 KB that later uploads do not repeat).
            "import gc, lib_vm_checks\nlib_vm_checks.upload_once(4096)\nlib_vm_checks.upload_once(256 * 1024)\n",
            mem,
            "lib_vm_checks.upload_once(8 * 1024)\n",
            mem,
            "lib_vm_checks.upload_once(256 * 1024)\n",
            mem,
        ],
        extra=("lib_fakes.py", "lib_vm_checks.py"),
    )
    assert proc.returncode == 0, proc.stderr
    base, small, big = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("mem")]
    assert abs(small - base) < 256 and abs(big - base) < 256, (base, small, big)


def test_an_idle_poll_allocates_nothing_for_pending_requests_in_micropython():
    # The session asks for expired twin requests at every poll (20 times a second in loop()):
    # with none outstanding that must not make garbage on the board.
    code = (
        "import gc\nfrom iothub.pending import Pending\np = Pending()\n"
        "gc.collect()\ngc.disable()\na = gc.mem_alloc()\n"
        "for i in range(100):\n    for x in p.expired(i):\n        pass\n"
        "print('allocated', gc.mem_alloc() - a)\n"
    )
    proc = run_in_vm(code)
    assert proc.returncode == 0, proc.stderr
    allocated = int(proc.stdout.split("allocated")[1].split()[0])
    assert allocated < 100, allocated  # it was 80 bytes a call
