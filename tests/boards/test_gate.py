"""The MicroPython gate: mpy-cross compiles every device file, and device code imports only what a
board has."""


import pytest

from boardkit import gate


def test_every_device_file_passes_the_gate():
    files = gate.device_files()
    assert any(path.name == "main.py" for path in files)
    failures = gate.check(files)
    assert failures == [], "\n".join(str(f) for f in failures)


@pytest.mark.parametrize("march", ["xtensa", "xtensawin", "rv32imc"])
def test_device_files_compile_for_every_board_architecture(march):
    failures = [f for f in (gate.compile_check(p, march) for p in gate.device_files()) if f]
    assert failures == [], "\n".join(str(f) for f in failures)


def test_match_statement_fails_with_file_and_line(tmp_path):
    source = tmp_path / "uses_match.py"
    source.write_text("x = 1\n\nmatch x:\n    case 1:\n        pass\n")
    failures = gate.check([source])
    assert len(failures) == 1
    assert failures[0].path == source and failures[0].line == 3
    assert str(failures[0]).startswith(f"{source}:3: mpy-cross: SyntaxError")


def test_positional_only_parameters_fail(tmp_path):
    source = tmp_path / "posonly.py"
    source.write_text("def f(a, /, b):\n    return a\n")
    [failure] = gate.check([source])
    assert failure.line == 1 and "SyntaxError" in failure.reason


def test_hmac_import_fails_with_file_and_line(tmp_path):
    source = tmp_path / "uses_hmac.py"
    source.write_text("import json\n\nimport hmac\nfrom urllib.parse import quote\n")
    failures = gate.check([source])
    assert [(f.line, f.reason) for f in failures] == [
        (3, "imports 'hmac', which MicroPython does not have"),
        (4, "imports 'urllib.parse', which MicroPython does not have"),
    ]
    assert str(failures[0]) == f"{source}:3: imports 'hmac', which MicroPython does not have"


def test_ussl_import_fails_as_on_micropython_1_23_and_later(tmp_path):
    # The u-prefixed names are aliases of built-in modules only; ssl is a Python module now.
    source = tmp_path / "old_tls.py"
    source.write_text("import usocket\nimport ussl\n")
    failures = gate.check([source])
    assert [(f.line, f.reason) for f in failures] == [(2, "imports 'ussl', which MicroPython does not have")]


def test_guarded_optional_imports_pass(tmp_path):
    source = tmp_path / "guarded.py"
    source.write_text(
        "try:\n    from typing import Optional\nexcept ImportError:\n    pass\n"
        "try:\n    from micropython import const\nexcept ImportError:\n    def const(x):\n        return x\n"
        "import time, machine, ubinascii\n"
    )
    assert gate.check([source]) == []


def test_unguarded_typing_and_logging_fail(tmp_path):
    source = tmp_path / "host_habits.py"
    source.write_text("from typing import Optional\nimport logging\nfrom dataclasses import dataclass\nimport threading\n")
    assert [f.line for f in gate.check([source])] == [1, 2, 3, 4]


def test_gate_command_reports_and_fails(tmp_path, capsys):
    source = tmp_path / "bad.py"
    source.write_text("import hmac\n")
    assert gate.main([str(source)]) == 1
    captured = capsys.readouterr()
    assert f"{source}:1: imports 'hmac'" in captured.err
