"""The agent (lib/iothub, loaded from the board's /lib as source) in MicroPython's own interpreter
against the local hub over TLS: connect, telemetry, twin, a method invoked by the hub, uploads of
10 KB and 1 MB into Azurite; the live heap measured at every phase and every poll()."""

from __future__ import annotations


import pytest

from bench.vmagent import run_agent

testing = pytest.importorskip("localhub.testing")

# The VM tier is part of make test: without Node or the VM it fails, it does not skip.
pytestmark = pytest.mark.vm

SIZES = {"f10k.bin": 10 * 1024, "f1m.bin": 1024 * 1024}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with testing.HubProcess(tmp_path_factory.mktemp("hub")) as h:
        yield h


@pytest.fixture(scope="module")
def agent_run(hub, tmp_path_factory):
    return run_agent(hub, tmp_path_factory.mktemp("board"), "vm-agent", uploads=SIZES, timeout=240)


def test_agent_works_end_to_end_in_micropython(hub, agent_run, tmp_path_factory):
    assert [m for m in hub.telemetry("vm-agent")][:1]  # telemetry reached the hub
    assert len(hub.wait_telemetry("vm-agent", 5, 10)) == 5
    twin = hub.get_twin("vm-agent")
    assert twin["properties"]["reported"]["bench"]["phase"] == "twin"
    notes = hub.wait_upload_notifications("vm-agent", 2, 30)
    assert sorted(n["blobName"].rsplit("/", 1)[-1] for n in notes) == ["f10k.bin", "f1m.bin"]
    board = tmp_path_factory.getbasetemp()
    for name, size in SIZES.items():
        data = hub.read_blob("vm-agent/" + name)
        assert len(data) == size
        assert data == next(board.glob("board*/" + name)).read_bytes()
    assert set(agent_run.phases) == {"import", "import mqtt", "client", "connect", "telemetry", "twin",
                                     "method", "import upload", "upload f10k.bin", "upload f1m.bin"}
    assert agent_run.poll_samples > 0


def test_upload_live_heap_does_not_depend_on_file_size(agent_run):
    small = agent_run.phases["upload f10k.bin"]
    big = agent_run.phases["upload f1m.bin"]
    print(f"\n[vm agent] live heap above baseline: {agent_run.phases}; poll peak {agent_run.poll_peak}")
    assert abs(big - small) <= 1024, (small, big)


def test_a_short_keep_alive_answer_does_not_stall_the_upload(hub, tmp_path):
    # MicroPython's blocking readinto() waits for the whole buffer; the hub's file-upload answer
    # is shorter than the HTTP client's 512-byte buffer, so a blocking refill would wait out the
    # timeout (2 s here) and fail the upload.
    run_agent(hub, tmp_path / "board", "vm-short-answer", uploads={"small.bin": 1000}, timeout=60, upload_timeout=2)
