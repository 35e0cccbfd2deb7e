"""The console command as a user meets it: clear messages, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
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
