"""Run-directory writing: atomic files, the manifest and its verification, config files."""

from __future__ import annotations

import dataclasses
import json
import os

import pandas as pd
import pytest

from pipeline import outputs as O
from pipeline._io import atomic_write_text, remove_temporaries
from pipeline.config import AuditConfig, load_config


def test_manifest_lists_and_verifies_every_file(tmp_path):
    O.write_json(tmp_path / "audit.json", {"a": 1})
    O.write_parquet(tmp_path / "applicants.parquet", pd.DataFrame({"id": [1, 2]}))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "m.json").write_text("{}")
    (tmp_path / "review").mkdir()
    (tmp_path / "review" / "reviews.sqlite").write_text("mutable")
    O.write_manifest(tmp_path)
    listed = json.loads((tmp_path / O.MANIFEST).read_text())["files"]
    assert set(listed) == {"audit.json", "applicants.parquet", "model/m.json"}
    assert O.verify_manifest(tmp_path) == []


def test_verify_reports_altered_missing_and_unlisted(tmp_path):
    O.write_json(tmp_path / "audit.json", {"a": 1})
    O.write_json(tmp_path / "other.json", {"b": 2})
    O.write_manifest(tmp_path)
    (tmp_path / "audit.json").write_text('{"a": 2}')
    (tmp_path / "other.json").unlink()
    (tmp_path / "extra.txt").write_text("x")
    problems = O.verify_manifest(tmp_path)
    assert "audit.json: content differs from the manifest (altered)" in problems
    assert "other.json: listed in the manifest but missing" in problems
    assert "extra.txt: not listed in the manifest" in problems


def test_atomic_write_leaves_old_content_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_json_rejects_nan(tmp_path):
    with pytest.raises(ValueError):
        O.write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_run_ids_are_safe_folder_names():
    assert O.check_run_id("20261123T062800Z-3e675d9e")
    for bad in ("../x", "a/b", "", "x" * 81):
        with pytest.raises(ValueError):
            O.check_run_id(bad)


def test_config_file_and_overrides(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text(
        '[audit]\nseed = 7\n[audit.policy]\nkind = "decline_rate"\nvalue = 0.2\n[audit.lender]\nname = "Bank"\n'
        '[audit.flags]\nborderline_margin = 0.1\nenabled = ["borderline"]\n'
    )
    config = load_config(cfg).with_overrides(seed=None, device="cpu")
    assert config.seed == 7 and config.device == "cpu"
    assert config.policy.kind == "decline_rate" and config.lender.name == "Bank"
    assert config.flags.borderline_margin == 0.1 and config.flags.enabled == ("borderline",)
    assert AuditConfig.from_dict(config.to_dict()) == config
    assert load_config(None) == AuditConfig()


def test_temporaries_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "reports" / "notices").mkdir(parents=True)
    (tmp_path / "review").mkdir()
    stale = tmp_path / "reports" / "notices" / ".notice_7.pdf.k2j4h1.tmp"
    stale.write_bytes(b"%PDF-1.7 half")
    kept = [tmp_path / "reports" / "notices" / "notice_7.pdf", tmp_path / "notes.tmp",
            tmp_path / "review" / ".trail.jsonl.x1.tmp"]
    for p in kept:
        p.write_bytes(b"x")
    assert remove_temporaries(tmp_path, skip=("review",)) == 1
    assert not stale.exists() and all(p.exists() for p in kept)


def test_governance_table_is_read_and_unknown_keys_are_refused(tmp_path):
    from pipeline.config import MSG_UNKNOWN_KEY, Governance

    cfg = tmp_path / "g.toml"
    cfg.write_text('[audit.governance]\nmodel_owner = "Head of Card Credit Risk"\nrisk_tier = "Tier 1"\n'
                   'sign_off = ["Model owner", "Chief Risk Officer"]\n')
    config = load_config(cfg)
    assert config.governance.model_owner == "Head of Card Credit Risk" and config.governance.validator == ""
    assert config.governance.sign_off == ("Model owner", "Chief Risk Officer")
    assert config.governance.intended_use == Governance().intended_use  # the default stays when not given
    assert AuditConfig.from_dict(config.to_dict()) == config
    cfg.write_text('[audit.governance]\nowner = "x"\n')
    with pytest.raises(ValueError) as err:
        load_config(cfg)
    assert str(err.value) == MSG_UNKNOWN_KEY.format(file=cfg, keys=["owner"], section="audit.governance",
                                                    expected=[f.name for f in dataclasses.fields(Governance)])
