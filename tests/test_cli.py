"""The console command as a user meets it: clear messages, exit codes, no tracebacks."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120
    )


def test_help_lists_run():
    assert "run" in build_parser().format_help()


def test_missing_data_says_where_to_put_it_without_traceback(tmp_path):
    env = {"CREDIT_AUDIT_DATA": "", "CREDIT_AUDIT_DATA_URL": "http://127.0.0.1:9/uci.zip", "PYTHONPATH": str(REPO)}
    result = _cli("run", "--out", str(tmp_path / "out"), env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "data/UCI_Credit_Card.csv" in result.stderr
    assert "--data PATH" in result.stderr and "CREDIT_AUDIT_DATA" in result.stderr
    assert not (tmp_path / "out").exists()


def test_env_var_names_the_file(tmp_path):
    missing = tmp_path / "nowhere.csv"
    env = {"CREDIT_AUDIT_DATA": str(missing), "CREDIT_AUDIT_DATA_URL": "http://127.0.0.1:9/uci.zip"}
    result = _cli("run", env=env)
    assert result.returncode == 2 and str(missing) in result.stderr


def test_bad_data_fails_before_the_flow_with_one_message(data_path, tmp_path, capsys):
    lines = data_path.read_text().splitlines()[:30]
    cells = lines[5].split(",")
    cells[5] = "240"
    lines[5] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    assert main(["run", "--data", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: line 6, column AGE: got 240, expected a value from 18 to 120" in err
    assert not (tmp_path / "out").exists()


def test_cuda_requested_without_cuda(data_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["run", "--data", str(data_path), "--device", "cuda"]) == 2
    assert "no CUDA device is available" in capsys.readouterr().err


def test_bad_config_key(tmp_path, capsys):
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[audit]\nseed = 1\nthreshhold = 0.4\n")
    assert main(["run", "--config", str(cfg)]) == 2
    assert "unknown setting(s) ['threshhold'] in [audit]" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run", "--device", "tpu"], ["frobnicate"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2


# ---- every user error: exit 2, one message naming where, no traceback, --out untouched -------

FIVE_MB = 5 * 1024 * 1024


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`credit-audit run` in a subprocess of this worktree, as a user or a pipeline runs it."""
    return _cli("run", "--out", str(tmp_path / "out"), *args, env={"PYTHONPATH": str(REPO)})


def _refused(result: subprocess.CompletedProcess, tmp_path: Path, *expected: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    for text in expected:
        assert text in result.stderr
    assert not (tmp_path / "out").exists()


def _real_slice(data_path: Path, tmp_path: Path, rows: int, change=None, name: str = "slice.csv") -> Path:
    lines = data_path.read_text().splitlines()[: rows + 1]
    if change:
        lines = change(lines)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _set_cell(row: int, column: int, value: str):
    def change(lines: list[str]) -> list[str]:
        cells = lines[row].split(",")
        cells[column] = value
        lines[row] = ",".join(cells)
        return lines

    return change


def test_five_mb_single_line_exits_2_fast(tmp_path):
    from pipeline import _loading as L

    data = tmp_path / "line.csv"
    data.write_text("a," * (FIVE_MB // 2))
    start = time.perf_counter()
    result = _run(tmp_path, "--data", str(data))
    seconds = time.perf_counter() - start
    _refused(result, tmp_path, L.MSG_LONG_LINE.format(file=data, line=1, length=FIVE_MB, limit=L.MAX_LINE_CHARS))
    print(f"`credit-audit run` on a 5 MB single line: exit 2 after {seconds:.1f} s (interpreter start included)")
    assert seconds < 60  # mostly importing torch; the refusal itself is ~0.3 s (test_loading.py)


def test_five_mb_cell_exits_2(data_path, tmp_path):
    data = _real_slice(data_path, tmp_path, 40, _set_cell(3, 5, "9" * FIVE_MB))
    _refused(_run(tmp_path, "--data", str(data)), tmp_path,
             f"{data}: line 4, column AGE: the cell is {FIVE_MB:,} characters long; expected at most 100")


def test_ten_row_file_exits_2_before_anything_is_written(data_path, tmp_path):
    data = _real_slice(data_path, tmp_path, 10)
    _refused(_run(tmp_path, "--data", str(data)), tmp_path,
             f"{data}: the file has 10 applicant row(s); an audit needs at least 200")


@pytest.mark.parametrize("value", ["1e20", "007", "-5", ""])
def test_bad_ids_exit_2(data_path, tmp_path, value):
    data = _real_slice(data_path, tmp_path, 40, _set_cell(2, 0, value))
    _refused(_run(tmp_path, "--data", str(data)), tmp_path, f"{data}: line 3, column ID: expected an applicant id",
             f"got {value!r}")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[audit]\nprotected_inputs = "no"\n', "[audit] protected_inputs must be true or false, got 'no'"),
        ("[audit]\ntest_fraction = 0.99\n", "[audit] test_fraction must be between 0.05 and 0.5, got 0.99"),
        ("[audit]\nseed = true\n", "[audit] seed must be a whole number from 0 to 4294967295, got true"),
        ("[audit]\nseed = 1.5\n", "[audit] seed must be a whole number from 0 to 4294967295, got 1.5"),
        ('[audit.lender]\nname = "Bank \\u202Eevil"\n', "(it contains RIGHT-TO-LEFT OVERRIDE (U+202E) at character 6)"),
        ("[audit\nseed = 1\n", "not a valid TOML file (Expected ']'"),
    ],
)
def test_bad_configuration_exits_2_naming_file_and_key(data_path, tmp_path, toml, message):
    cfg = tmp_path / "audit.toml"
    cfg.write_text(toml)
    _refused(_run(tmp_path, "--data", str(data_path), "--config", str(cfg)), tmp_path, f"{cfg}: ", message)


def test_an_existing_out_folder_is_left_exactly_as_it_was(data_path, tmp_path):
    out = tmp_path / "out"
    (out / "reports").mkdir(parents=True)
    (out / "audit.json").write_text('{"run_id": "earlier"}')
    (out / "reports" / "audit_report.pdf").write_bytes(b"%PDF-1.7 earlier")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    data = _real_slice(data_path, tmp_path, 10)
    result = _cli("run", "--data", str(data), "--out", str(out), env={"PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ('{"format": 1, "features": ["LIMIT_BAL"]}', "no model_hash: the weights in"),
        ('{"format": 1, "features": [', "not valid JSON model metadata"),
    ],
)
def test_bad_model_folder_exits_2_naming_model_json(data_path, tmp_path, meta, message):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text(meta)
    _refused(_run(tmp_path, "--data", str(data_path), "--model", str(folder)), tmp_path,
             f"{folder / 'model.json'}: {message}")


@pytest.mark.parametrize(
    "argv",
    [["run", "--seed", "-1"], ["run", "--seed", "1.5"], ["run", "--seed", "4294967296"],
     ["run", "--explain-chunk-rows", "0"], ["run", "--notice-limit", "-3"]],
)
def test_bad_numbers_on_the_command_line_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    assert "expected a whole number of at least" in capsys.readouterr().err


def test_choices_come_from_their_one_place():
    """cmd_run reads the choices from torch- and Prefect-free modules, not copies of them."""
    from flows import cmd_run, runners
    from pipeline import config, constants, device

    assert cmd_run.DEVICE_CHOICES is device.DEVICE_CHOICES is constants.DEVICE_CHOICES
    assert cmd_run.RUNNERS is runners.RUNNERS and cmd_run.SEED_MAX == config.SEED_MAX == constants.SEED_MAX


def test_parsing_the_command_line_imports_no_heavy_library():
    heavy = ("torch", "prefect", "pandas", "weasyprint", "sklearn")
    code = ("import sys, flows.cli; flows.cli.build_parser(); "
            f"print(*[m in sys.modules for m in {heavy!r}])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.stdout.split() == ["False"] * len(heavy), (heavy, result.stdout, result.stderr)


@pytest.mark.parametrize("command", ["", "run", "review", "verify", "notice", "schedule"])
def test_help_answers_at_once(command):
    """bench/cli_help.py measures ~0.04 s; the bound here only catches a heavy import creeping back."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows.cli", *([command] if command else []), "--help"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0 and "usage: credit-audit" in done.stdout, done.stderr
    assert elapsed < 3.0, f"{command} --help took {elapsed:.2f} s"


def test_schedule_refuses_a_bad_configuration_before_serving(tmp_path, capsys):
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[audit]\nseed = true\n")
    assert main(["schedule", "--cron", "0 6 1 * *", "--config", str(cfg)]) == 2
    assert f"{cfg}: [audit] seed must be a whole number from 0 to 4294967295, got true" in capsys.readouterr().err


def test_every_option_the_readme_shows_exists():
    """The README's command lines are checked against the parser, so the docs cannot drift from the code."""
    import re

    from flows.cli import build_parser

    parser = build_parser()
    commands = {name: sub for action in parser._subparsers._group_actions for name, sub in action.choices.items()}
    readme = (REPO / "README.md").read_text()
    shown = re.findall(r"credit-audit (\w[\w-]*)((?: [^`|\n]*)?)", readme)
    checked = 0
    for command, rest in shown:
        if command not in commands:
            continue
        parsers = [commands[command]]
        for action in commands[command]._actions:  # a command with actions of its own (`keys init`)
            choices = action.choices if isinstance(action.choices, dict) else {}
            parsers += [p for p in choices.values() if isinstance(p, argparse.ArgumentParser)]
        known = {o for p in parsers for a in p._actions for o in a.option_strings}
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
            assert option in known, f"README shows `credit-audit {command} ... {option}`, which {command} does not take"
            checked += 1
    assert checked >= 10


def test_no_usage_data_leaves_an_audit():
    """Prefect's client telemetry is off unless the operator turns it on (checked outside any CI marker,
    which would turn it off by itself)."""
    from prefect._internal.analytics.ci_detection import CI_ENV_VARS

    unset = {"DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED", *CI_ENV_VARS}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    code = ("import sys; from flows.cli import main; main(['keys', 'show']);"
            "from prefect._internal.analytics import is_telemetry_enabled; sys.exit(3 if is_telemetry_enabled() else 0)")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
