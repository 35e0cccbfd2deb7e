"""Configuration: strict types and ranges for every key, each error naming the file, table and key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from pipeline import schema as S
from pipeline.config import (
    MSG_BAD_SETTING,
    MSG_NOT_TOML,
    MSG_UNKNOWN_KEY,
    MSG_UNKNOWN_TABLE,
    AuditConfig,
    ConfigError,
    Lender,
    _AuditSettings,
    _FlagSettings,
    _LenderSettings,
    _PolicySettings,
    load_config,
)
from pipeline.flags import FlagConfig
from pipeline.policy import ThresholdPolicy

REPO = Path(__file__).resolve().parents[1]
LENDER_TEXT = "text of 1 to 120 characters on one line, without control or bidirectional formatting characters"


def _toml(tmp_path: Path, text: str, name: str = "audit.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value)


@pytest.mark.parametrize(
    ("text", "where", "expected", "value"),
    [
        # the adversarial pass: each was accepted or crashed before
        ('[audit]\nprotected_inputs = "no"\n', "[audit] protected_inputs", "true or false", "'no'"),
        ("[audit]\ntest_fraction = 0.99\n", "[audit] test_fraction", "between 0.05 and 0.5", "0.99"),
        ("[audit]\nseed = 1.5\n", "[audit] seed", "a whole number from 0 to 4294967295", "1.5"),
        ("[audit]\nseed = true\n", "[audit] seed", "a whole number from 0 to 4294967295", "true"),
        ('[audit]\nseed = "7"\n', "[audit] seed", "a whole number from 0 to 4294967295", "'7'"),
        ("[audit]\nseed = -1\n", "[audit] seed", "a whole number from 0 to 4294967295", "-1"),
        ("[audit]\nseed = 4294967296\n", "[audit] seed", "a whole number from 0 to 4294967295", "4294967296"),
        ("[audit]\ntest_fraction = 0.01\n", "[audit] test_fraction", "between 0.05 and 0.5", "0.01"),
        ("[audit]\ntest_fraction = nan\n", "[audit] test_fraction", "between 0.05 and 0.5", "nan"),
        ('[audit]\ntest_fraction = "0.2"\n', "[audit] test_fraction", "between 0.05 and 0.5", "'0.2'"),
        ("[audit]\nsurrogate_depth = 0\n", "[audit] surrogate_depth", "a whole number from 1 to 12", "0"),
        ("[audit]\nsurrogate_depth = 4.0\n", "[audit] surrogate_depth", "a whole number from 1 to 12", "4.0"),
        ("[audit]\nbackground_size = -5\n", "[audit] background_size", "a whole number from 10 to 10000", "-5"),
        ('[audit]\ndevice = "tpu"\n', "[audit] device", 'one of "auto", "cpu", "cuda"', "'tpu'"),
        ("[audit]\npolicy = 3\n", "[audit] policy", "a table ([audit.policy]: kind, value)", "3"),
        ('[audit.policy]\nkind = "fixd"\n', "[audit.policy] kind", 'one of "fixed", "decline_rate", "max_youden"',
         "'fixd'"),
        ("[audit.policy]\nvalue = 1.0\n", "[audit.policy] value", "a number strictly between 0 and 1", "1.0"),
        ("[audit.flags]\nborderline_margin = 0.9\n", "[audit.flags] borderline_margin", "between 0 and 0.5", "0.9"),
        ("[audit.flags]\nmin_stability = false\n", "[audit.flags] min_stability", "between 0 and 1", "false"),
        ("[audit.flags]\nrange_quantile = 0.5\n", "[audit.flags] range_quantile", "at least 0 and below 0.5", "0.5"),
        ("[audit.flags]\nrange_slack = inf\n", "[audit.flags] range_slack", "between 0 and 10", "inf"),
        ("[audit.flags]\nprotected_top_k = 0\n", "[audit.flags] protected_top_k", "a whole number from 1 to 23", "0"),
        ('[audit.flags]\nenabled = ["borderline", "bordreline"]\n', "[audit.flags] enabled",
         "a list of flag codes, each one of borderline", "'bordreline'"),
        ('[audit.flags]\nenabled = "borderline"\n', "[audit.flags] enabled", "a list of flag codes", "'borderline'"),
        ("[audit.lender]\nname = 5\n", "[audit.lender] name", LENDER_TEXT, "5"),
        ('[audit.lender]\nname = ""\n', "[audit.lender] name", LENDER_TEXT, "''"),
    ],
)
def test_bad_values_name_file_table_key_expectation_and_value(tmp_path, text, where, expected, value):
    path = _toml(tmp_path, text)
    message = _error(path)
    assert message.startswith(f"{path}: {where} must be {expected}")
    assert message.endswith(f", got {value}") or f", got {value} (" in message


def test_the_issue_example_message(tmp_path):
    path = _toml(tmp_path, "[audit]\ntest_fraction = 0.99\n")
    assert _error(path) == f"{path}: [audit] test_fraction must be between 0.05 and 0.5, got 0.99"


def test_every_problem_is_reported_at_once(tmp_path):
    path = _toml(tmp_path, '[audit]\nseed = 1.5\nprotected_inputs = "no"\n[audit.policy]\nvalue = 2.0\n')
    lines = _error(path).splitlines()
    assert [line.split(" must ")[0] for line in lines] == [
        f"{path}: [audit] seed", f"{path}: [audit.policy] value", f"{path}: [audit] protected_inputs"]


@pytest.mark.parametrize(
    ("text", "section", "keys"),
    [
        ("[audit]\nseed = 1\nthreshhold = 0.4\n", "audit", ["threshhold"]),
        ('[audit.policy]\nkind = "fixed"\nthreshold = 0.4\n', "audit.policy", ["threshold"]),
        ('[audit.lender]\nname = "Bank"\nphone = "1"\nemail = "x"\n', "audit.lender", ["email", "phone"]),
        ("[audit.flags]\nmargin = 0.1\n", "audit.flags", ["margin"]),
    ],
)
def test_unknown_keys_are_errors(tmp_path, text, section, keys):
    path = _toml(tmp_path, text)
    assert f"{path}: unknown setting(s) {keys} in [{section}]; expected some of [" in _error(path)


def test_unknown_key_message_lists_the_allowed_keys(tmp_path):
    path = _toml(tmp_path, "[audit]\nthreshhold = 0.4\n")
    expected = [f.name for f in dataclasses.fields(AuditConfig)]
    assert _error(path) == MSG_UNKNOWN_KEY.format(file=path, keys=["threshhold"], section="audit", expected=expected)


def test_a_misspelt_audit_table_is_an_error_not_an_empty_config(tmp_path):
    path = _toml(tmp_path, "[audti]\nseed = 3\n")
    assert _error(path) == MSG_UNKNOWN_TABLE.format(file=path, keys=["audti"])


# Bidi controls reverse or reorder the rest of a notice line; C0/C1 controls break it.
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
_CONTROLS = [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1B, 0x7F, 0x85, 0x9B, 0x2028, 0x2029]


@pytest.mark.parametrize("code", _BIDI + _CONTROLS, ids=lambda c: f"U+{c:04X}")
def test_lender_texts_refuse_control_and_bidi_characters(tmp_path, code):
    escaped = f"\\u{code:04X}"  # TOML escape: the file itself stays plain text
    path = _toml(tmp_path, f'[audit.lender]\ncontact = "call us{escaped} now"\n')
    message = _error(path)
    assert message.startswith(f"{path}: [audit.lender] contact must be text of 1 to 200 characters")
    assert f"(U+{code:04X}) at character 8)" in message


@pytest.mark.parametrize(("key", "limit"), [("name", 120), ("address", 300), ("contact", 200),
                                            ("review_contact", 200), ("data_protection_officer", 200)])
def test_lender_texts_have_length_limits(tmp_path, key, limit):
    ok = _toml(tmp_path, f'[audit.lender]\n{key} = "{"x" * limit}"\n', name="ok.toml")
    assert getattr(load_config(ok).lender, key) == "x" * limit
    path = _toml(tmp_path, f'[audit.lender]\n{key} = "{"x" * (limit + 1)}"\n')
    message = _error(path)
    assert message.startswith(f"{path}: [audit.lender] {key} must be text of 1 to {limit} characters")
    assert len(message) < 600


def test_lender_texts_may_use_any_script(tmp_path):
    path = _toml(tmp_path, '[audit.lender]\nname = "範例銀行 — Banque d\'Exemple"\naddress = "台北市 1 號"\n')
    assert load_config(path).lender.name == "範例銀行 — Banque d'Exemple"


def test_malformed_toml_names_the_file(tmp_path):
    path = _toml(tmp_path, "[audit\nseed = 1\n")
    message = _error(path)
    assert message.startswith(MSG_NOT_TOML.format(file=path, reason="").rstrip(")"))
    assert "line 1" in message


def test_unreadable_and_non_utf8_files_are_named(tmp_path):
    missing = tmp_path / "nowhere.toml"
    assert _error(missing) == f"{missing}: cannot read the configuration file (No such file or directory)"
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[audit.lender]\nname = "Caf\xe9"\n'.encode("latin-1"))
    assert _error(latin).startswith(f"{latin}: not a valid TOML file (not UTF-8 text")


def test_whole_numbers_are_accepted_for_fractions_and_stored_as_floats(tmp_path):
    config = load_config(_toml(tmp_path, "[audit.flags]\nrange_slack = 0\nrange_quantile = 0\n"))
    assert config.flags.range_slack == 0.0 and isinstance(config.flags.range_slack, float)


def test_readme_example_is_a_valid_configuration(tmp_path):
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```toml\n(\[audit\].*?)```", readme, re.S).group(1)
    loaded = load_config(_toml(tmp_path, block))  # its governance and notice texts are placeholders ("...")
    defaults = AuditConfig()
    assert dataclasses.replace(loaded, governance=defaults.governance, notice=defaults.notice) == defaults


def test_flow_parameters_and_command_line_overrides_are_validated():
    with pytest.raises(ConfigError, match=r"^config: \[audit\] test_fraction must be between 0.05 and 0.5, got 0.99$"):
        AuditConfig.from_dict({**AuditConfig().to_dict(), "test_fraction": 0.99})
    with pytest.raises(ConfigError, match=r"^command line: \[audit\] seed must be a whole number"):
        AuditConfig().with_overrides(seed=-1)
    with pytest.raises(ConfigError, match=r"^AuditConfig: \[audit\] protected_inputs must be true or false"):
        AuditConfig(protected_inputs="no")  # type: ignore[arg-type]
    config = AuditConfig(seed=3, background_size=25)
    assert AuditConfig.from_dict(config.to_dict()) == config
    assert config.with_overrides(seed=None, device=None) is config


def test_schema_covers_exactly_the_settings_the_flow_uses():
    """One table per dataclass, the same keys: a new setting without a type and range fails here."""
    pairs = [(_AuditSettings, AuditConfig), (_PolicySettings, ThresholdPolicy), (_LenderSettings, Lender),
             (_FlagSettings, FlagConfig)]
    for settings, cls in pairs:
        assert list(settings.model_fields) == [f.name for f in dataclasses.fields(cls)]
        assert all(info.description for info in settings.model_fields.values())


def test_device_choices_match_the_device_module():
    from pipeline.device import DEVICE_CHOICES

    assert _AuditSettings.model_fields["device"].description == ", ".join(f'"{c}"' for c in DEVICE_CHOICES).join(
        ["one of ", ""])
    assert _FlagSettings.model_fields["protected_top_k"].metadata[-1].le == len(S.FEATURE_NAMES)


def test_defaults_are_valid_and_unchanged():
    config = AuditConfig()
    assert (config.seed, config.test_fraction, config.surrogate_depth, config.background_size) == (0, 0.2, 4, 100)
    assert load_config(None) == config
    assert MSG_BAD_SETTING.count("{file}") == 1
