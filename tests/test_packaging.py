"""Packaging facts that need no build: the locks agree, the runtime is lean, the helpers say what they did.

The wheel itself is tested in test_wheel.py and the image by scripts/check-image.sh;
these checks catch a lock edited by hand or a dependency put in the wrong list in
well under a second.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import conftest
import pytest

REPO = Path(__file__).resolve().parents[1]
DEV_ONLY = ("pytest", "pytest-timeout", "ruff", "playwright", "pypdf", "captum", "dice-ml")


def _pins(lock: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / lock).read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_norm(name)] = version.strip()  # an environment marker stays part of the pin
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    return _norm(re.split(r"[=<>!~\[; ]", spec, maxsplit=1)[0])


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_runtime_lock_is_the_full_lock_restricted_to_the_runtime():
    full, runtime = _pins("requirements.lock"), _pins("requirements-runtime.lock")
    differing = {n: (v, full.get(n)) for n, v in runtime.items() if full.get(n) != v}
    assert not differing, f"runtime pins missing from, or different in, requirements.lock: {differing}"


def test_runtime_holds_no_test_bench_or_browser_tool():
    runtime = _pins("requirements-runtime.lock")
    declared = {_requirement_name(d) for d in _project()["dependencies"]}
    assert declared <= set(runtime), f"declared but not locked: {declared - set(runtime)}"
    for tool in DEV_ONLY:
        assert _norm(tool) not in runtime and _norm(tool) not in declared, tool
        assert _norm(tool) in {_requirement_name(d) for d in _project()["optional-dependencies"]["dev"]}, tool


def test_dev_extra_is_pinned_by_the_full_lock():
    full = _pins("requirements.lock")
    missing = {_requirement_name(d) for d in _project()["optional-dependencies"]["dev"]} - set(full)
    assert not missing, f"the dev extra is not in requirements.lock: {missing}"


def _pip_audit_report():
    spec = importlib.util.spec_from_file_location("pip_audit_report", REPO / "scripts" / "pip_audit_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pip_audit_summary_counts_what_was_not_audited_and_fails_only_on_new_findings(monkeypatch):
    module = _pip_audit_report()
    report = {"dependencies": [
        {"name": "a", "version": "1", "vulns": []},
        {"name": "b", "version": "2", "vulns": [{"id": "PYSEC-1", "fix_versions": [], "aliases": ["CVE-1"]},
                                                {"id": "GHSA-2", "fix_versions": ["2.1"], "aliases": []}]},
        {"name": "c", "skip_reason": "Dependency not found on PyPI and could not be audited: c (3)"},
    ]}
    monkeypatch.setattr(module, "KNOWN", {"PYSEC-1": "no fixed release; not reachable from an audit"})
    lines, new = module.summarise(report, "requirements.lock")
    assert lines[0] == ("pip-audit of requirements.lock: 3 pinned packages, 2 audited, 1 not audited, "
                        "2 known vulnerabilities")
    assert "documented: b 2: PYSEC-1 (CVE-1); fix: no fixed release" in lines[1]
    assert "NEW: b 2: GHSA-2 (); fix: 2.1" in lines[2]
    assert "NOT AUDITED: 1 of 3 packages" in lines[3]
    assert new == ["GHSA-2"]


@pytest.fixture
def nowhere(tmp_path, monkeypatch) -> Path:
    """No data file anywhere the tests look (the shared folder and data/ point into tmp_path)."""
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path / "shared" / "UCI_Credit_Card.csv")
    monkeypatch.setattr(conftest, "REPO", tmp_path)
    monkeypatch.delenv("CREDIT_AUDIT_DATA", raising=False)
    return tmp_path


def test_tests_find_the_data_as_the_cli_does(nowhere, monkeypatch):
    assert conftest.real_data_path() is None
    local = nowhere / "data" / "UCI_Credit_Card.csv"
    local.parent.mkdir()
    local.write_text("ID\n")
    assert conftest.real_data_path() == local
    env_file = nowhere / "elsewhere.csv"
    env_file.write_text("ID\n")
    monkeypatch.setenv("CREDIT_AUDIT_DATA", str(env_file))
    assert conftest.real_data_path() == env_file
    conftest.SHARED_DATA.parent.mkdir()
    conftest.SHARED_DATA.write_text("ID\n")
    assert conftest.real_data_path() == conftest.SHARED_DATA


def test_missing_data_message_names_all_three_places(nowhere):
    message = conftest.missing_data_message()
    assert str(conftest.SHARED_DATA) in message and "$CREDIT_AUDIT_DATA" in message
    assert str(nowhere / "data" / "UCI_Credit_Card.csv") in message


def test_every_shipped_schema_file_is_package_data():
    """pipeline.schema reads pipeline/schemas/*.toml at import: a wheel without them cannot start."""
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["pipeline"]
    files = sorted((REPO / "pipeline" / "schemas").iterdir())
    assert files and all(any(f.relative_to(REPO / "pipeline").match(g) for g in globs) for f in files), files
