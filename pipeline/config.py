"""Audit configuration: every knob of a run in one typed, recorded object.

A run's configuration is written into audit.json, so any figure in a report
can be traced to the settings that produced it. Loaded from an optional TOML
file and checked against a strict pydantic schema before anything runs:
a value of the wrong type is never coerced (`protected_inputs = "no"` is an
error, not a truthy string), every number has a range, lender texts (printed
on every notice) have a length limit and no control or bidirectional
formatting characters, and unknown keys are an error, not silently ignored.
Every message names the file, the table and the key.

The dataclasses below are what the flow uses; the pydantic models only
check. Defaults live in the dataclasses, so there is one place for them.
"""

from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from . import schema as S
from ._io import FileTooLarge, NotRegularFile, read_regular
from ._toml import loads as toml_loads
from .constants import COUNTERFACTUAL_MARGIN, SEED_MAX
from .flags import FlagCode, FlagConfig
from .gates import GatePolicy
from .policy import ThresholdPolicy
from .shift_spec import ALL, check_shift_texts

MSG_UNKNOWN_KEY = "{file}: unknown setting(s) {keys} in [{section}]; expected some of {expected}"
MSG_UNKNOWN_TABLE = "{file}: unknown top-level setting(s) {keys}; every setting belongs in the [audit] table"
MSG_BAD_SETTING = "{file}: {where} must be {expected}, got {value}{detail}"
MSG_NOT_TOML = "{file}: not a valid TOML file ({reason})"
MSG_UNREADABLE = "{file}: cannot read the configuration file ({reason})"
MSG_CONTROL_CHAR = "it contains {name} (U+{code:04X}) at character {position}"
MSG_BLANK = "it is blank"


TEST_FRACTION_RANGE = (0.05, 0.5)
SURROGATE_DEPTH_RANGE = (1, 12)  # deeper trees stop being readable rules
BACKGROUND_SIZE_RANGE = (10, 10_000)  # fewer: the SHAP base value is a handful of people
MAX_SHOWN_VALUE = 80
# Bidirectional formatting characters reorder the rest of a notice line (U+202E reverses it).
BIDI_CONTROLS = frozenset(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
_FLAG_CODES = tuple(str(c) for c in FlagCode)
REGIMES = ("eu", "us")


# Settings that do not change what a run computes (the shift checks are measured on the finished
# audit's decisions: changing them re-measures in seconds, it does not retrain or re-explain).
JUDGING_ONLY = ("gates", "governance", "shift")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file (or source), table and key."""


@dataclass(frozen=True)
class Lender:
    """Who took the decision and how an applicant reaches a human (GDPR Art. 13/22, Reg B)."""

    name: str = "Example Card Bank Ltd."
    address: str = "1 Example Street, Taipei, Taiwan"
    contact: str = "credit-decisions@example-bank.test, +886 2 0000 0000"
    review_contact: str = "reviews@example-bank.test (quote your notice reference)"
    data_protection_officer: str = "dpo@example-bank.test"


@dataclass(frozen=True)
class Governance:
    """Who answers for the model and what it is for (SR 11-7 ownership and validation; EU AI Act Art. 13).

    Printed on page 1 of the audit report; a field left empty is printed as "not set", and the
    conclusion asks for it before sign-off. `sign_off` lists the roles that sign the report.
    """

    model_owner: str = ""
    validator: str = ""
    intended_use: str = (
        "Approve or decline credit-card applications of natural persons from their credit limit, repayment "
        "history, bills and payments; every adverse decision can be reviewed by a person on request"
    )
    risk_tier: str = ""
    sign_off: tuple[str, ...] = ("Model owner", "Independent validator", "Model risk committee")


@dataclass(frozen=True)
class NoticeSettings:
    """The law a notice is written under and how an applicant reaches the lender (printed on every notice).

    `regime`: "eu" (GDPR Art. 13-15 and 22, AI Act Art. 86; complaints to
    `data_protection_authority`) or "us" (ECOA / Regulation B, naming
    `federal_agency`; the FCRA 615(a) text when `consumer_report_agency`,
    the agency whose consumer report was used, is not empty).
    """

    regime: str = "eu"
    postal_contact: str = "Credit Decisions Review, Example Card Bank Ltd., 1 Example Street, Taipei, Taiwan"
    email_contact: str = "reviews@example-bank.test"
    data_protection_authority: str = "Example Data Protection Authority, 2 Example Square, Example City"
    federal_agency: str = "Consumer Financial Protection Bureau, 1700 G Street NW, Washington, DC 20552"
    consumer_report_agency: str = ""


@dataclass(frozen=True)
class CounterfactualSettings:
    """What a counterfactual must achieve and how far the credit limit may move (README, "Counterfactuals").

    `margin`: the counterfactual's probability of default must be at most
    threshold - margin. `max_limit_factor`: a limit the applicant could
    request stays within [limit / factor, limit * factor].
    """

    margin: float = COUNTERFACTUAL_MARGIN
    max_limit_factor: float = 2.0


@dataclass(frozen=True)
class ShiftSettings:
    """Fairness under demographic shift (pipeline.shift_spec for the syntax; README, "Fairness under shift").

    `checks`: e.g. "SEX:+0.1", "SEX:female-0.05", or "all" (every protected attribute's
    least-favoured group, +/-0.1); empty: no shift is measured.
    """

    checks: tuple[str, ...] = (ALL,)

    def __post_init__(self) -> None:
        check_shift_texts(self.checks)


@dataclass(frozen=True)
class AuditConfig:
    """Every setting of a run; construction validates it (`ConfigError` names the key)."""

    seed: int = 0
    device: str = "auto"
    test_fraction: float = 0.2
    policy: ThresholdPolicy = field(default_factory=ThresholdPolicy)
    surrogate_depth: int = 4
    background_size: int = 100
    protected_inputs: bool = False
    lender: Lender = field(default_factory=Lender)
    governance: Governance = field(default_factory=Governance)
    flags: FlagConfig = field(default_factory=FlagConfig)
    notice: NoticeSettings = field(default_factory=NoticeSettings)
    counterfactuals: CounterfactualSettings = field(default_factory=CounterfactualSettings)
    gates: GatePolicy = field(default_factory=GatePolicy)
    shift: ShiftSettings = field(default_factory=ShiftSettings)

    def __post_init__(self) -> None:
        _validate({"audit": self.to_dict()}, "AuditConfig")

    def to_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """The settings that change what a run computes: all but the release gates and the governance.

        The gates judge a finished audit and the governance fields name who answers for it;
        changing either must re-judge the run and re-render its report, not start another run that
        retrains and re-explains everything.
        """
        return {k: v for k, v in self.to_dict().items() if k not in JUDGING_ONLY}

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> AuditConfig:
        """Inverse of to_dict (flow parameters and deployments carry plain dicts); validated like a file."""
        return _build({"audit": d}, source)

    def with_overrides(self, **kw: object) -> AuditConfig:
        """CLI flags win over the file; None means 'not given'. The result is validated."""
        given = {k: v for k, v in kw.items() if v is not None}
        return self.from_dict({**self.to_dict(), **given}, source="command line") if given else self


# ---- the schema: types and ranges only (defaults stay in the dataclasses) -------------


def _no_controls(value: str) -> str:
    """Refuse what would corrupt a printed line: controls, bidi formatting, line separators."""
    for i, ch in enumerate(value):
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ord(ch) in BIDI_CONTROLS:
            name = unicodedata.name(ch, "a control character")
            raise ValueError(MSG_CONTROL_CHAR.format(name=name, code=ord(ch), position=i + 1))
    return value


def _plain_text(value: str) -> str:
    """A line for a notice: no controls (`_no_controls`) and not blank."""
    if not _no_controls(value).strip():
        raise ValueError(MSG_BLANK)
    return value


def _text(max_length: int) -> Any:
    """A one-line text of 1..max_length characters, checked by `_plain_text`."""
    expected = (
        f"text of 1 to {max_length} characters on one line, without control or bidirectional"
        " formatting characters"
    )
    return Annotated[
        str, Field(default=None, min_length=1, max_length=max_length, description=expected),
        AfterValidator(_plain_text),
    ]


def _between(low: float, high: float, *, whole: bool = False, open_high: bool = False) -> dict:
    """Field bounds plus the sentence an error message uses, from one pair of numbers."""
    if whole:
        return {"ge": low, "le": high, "description": f"a whole number from {low} to {high}"}
    if open_high:
        return {"ge": low, "lt": high, "description": f"at least {low:g} and below {high:g}"}
    return {"ge": low, "le": high, "description": f"between {low:g} and {high:g}"}


_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _PolicySettings(BaseModel):
    model_config = _STRICT
    kind: Literal["fixed", "decline_rate", "max_youden"] = Field(
        None, description='one of "fixed", "decline_rate", "max_youden"')
    value: float = Field(None, gt=0, lt=1, description="a number strictly between 0 and 1")


class _LenderSettings(BaseModel):
    model_config = _STRICT
    name: _text(120)
    address: _text(300)
    contact: _text(200)
    review_contact: _text(200)
    data_protection_officer: _text(200)


class _FlagSettings(BaseModel):
    model_config = _STRICT
    borderline_margin: float = Field(None, **_between(0, 0.5))
    min_stability: float = Field(None, **_between(0, 1))
    range_quantile: float = Field(None, **_between(0, 0.5, open_high=True))
    range_slack: float = Field(None, **_between(0, 10))
    protected_top_k: int = Field(None, **_between(1, len(S.FEATURE_NAMES), whole=True))
    enabled: list[Literal[_FLAG_CODES]] = Field(  # type: ignore[valid-type]
        None, description=f"a list of flag codes, each one of {', '.join(_FLAG_CODES)}")


def _optional_text(max_length: int) -> Any:
    """A one-line text of at most max_length characters that may be empty ("not set")."""
    expected = f"text of at most {max_length} characters on one line, without control or bidirectional characters"
    return Annotated[str, Field(default=None, max_length=max_length, description=expected),
                     AfterValidator(_no_controls)]


class _GovernanceSettings(BaseModel):
    model_config = _STRICT
    model_owner: _optional_text(200)
    validator: _optional_text(200)
    intended_use: _optional_text(600)
    risk_tier: _optional_text(60)
    sign_off: list[Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_plain_text)]] = Field(
        None, description="a list of roles that sign the report (one-line texts of at most 120 characters)")


class _NoticeSettings(BaseModel):
    model_config = _STRICT
    regime: Literal[REGIMES] = Field(None, description=f"one of {', '.join(map(repr, REGIMES))}")  # type: ignore[valid-type]
    postal_contact: _text(300)
    email_contact: _text(200)
    data_protection_authority: _text(300)
    federal_agency: _text(300)
    consumer_report_agency: _optional_text(300)


class _CounterfactualSettings(BaseModel):
    model_config = _STRICT
    margin: float = Field(None, **_between(0, 0.5, open_high=True))
    max_limit_factor: float = Field(None, **_between(1, 10))


class _GateSettings(BaseModel):
    model_config = _STRICT
    fail_on_verdicts: list[Literal["fail", "review", "insufficient data"]] = Field(
        None, description='a list of fairness verdicts, each one of "fail", "review", "insufficient data"')
    min_auc: float | None = Field(None, **_between(0, 1))  # None (not in the file): rule off
    max_psi: float | None = Field(None, **_between(0, 10))  # None (not in the file): rule off
    max_flag_rate: float | None = Field(None, **_between(0, 1))  # None (not in the file): rule off
    max_auc_drop: float | None = Field(None, **_between(0, 1))  # None (not in the file): rule off
    max_decline_rate_change: float | None = Field(None, **_between(0, 1))  # None (not in the file): rule off
    max_shift_degradation: float | None = Field(None, **_between(0, 1))  # None (not in the file): rule off


def _shift_check(text: str) -> str:
    check_shift_texts([text])
    return text


class _ShiftSettings(BaseModel):
    model_config = _STRICT
    checks: list[Annotated[str, Field(max_length=200), AfterValidator(_no_controls), AfterValidator(_shift_check)]] = Field(
        None, description='a list of shift checks, each "ATTRIBUTE:+0.1", "ATTRIBUTE:GROUP-0.05" or "all"')


class _AuditSettings(BaseModel):
    model_config = _STRICT
    seed: int = Field(None, **_between(0, SEED_MAX, whole=True))
    device: Literal["auto", "cpu", "cuda"] = Field(None, description='one of "auto", "cpu", "cuda"')
    test_fraction: float = Field(None, **_between(*TEST_FRACTION_RANGE))
    policy: _PolicySettings = Field(None, description="a table ([audit.policy]: kind, value)")
    surrogate_depth: int = Field(None, **_between(*SURROGATE_DEPTH_RANGE, whole=True))
    background_size: int = Field(None, **_between(*BACKGROUND_SIZE_RANGE, whole=True))
    protected_inputs: bool = Field(None, description="true or false")
    lender: _LenderSettings = Field(None, description="a table ([audit.lender]: name, address, ...)")
    governance: _GovernanceSettings = Field(
        None, description="a table ([audit.governance]: model_owner, validator, intended_use, ...)")
    flags: _FlagSettings = Field(None, description="a table ([audit.flags]: borderline_margin, ...)")
    notice: _NoticeSettings = Field(None, description="a table ([audit.notice]: regime, postal_contact, ...)")
    counterfactuals: _CounterfactualSettings = Field(
        None, description="a table ([audit.counterfactuals]: margin, max_limit_factor)")
    gates: _GateSettings = Field(None, description="a table ([audit.gates]: fail_on_verdicts, min_auc, ...)")
    shift: _ShiftSettings = Field(None, description="a table ([audit.shift]: checks)")


class _FileSettings(BaseModel):
    model_config = _STRICT
    audit: _AuditSettings = Field(None, description="a table ([audit])")


# ---- from a validation error to one line per problem, each naming file, table and key -----


def _shown(value: object) -> str:
    """A value as the user wrote it (TOML spelling for booleans), cut short when long."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    else:
        text = repr(value)  # escapes control and bidi characters: \u202e, \n
    if len(text) <= MAX_SHOWN_VALUE:
        return text
    size = len(value) if isinstance(value, str) else len(text)
    return f"{text[:MAX_SHOWN_VALUE]}... ({size:,} characters)"


def _field_at(loc: tuple) -> tuple[str, str, str]:
    """(table, key, expected) of an error location such as ('audit', 'lender', 'name')."""
    model: type[BaseModel] = _FileSettings
    names = [p for p in loc if isinstance(p, str)]
    info = None
    for depth, name in enumerate(names):
        info = model.model_fields.get(name)
        if info is None or depth == len(names) - 1:
            break
        model = info.annotation  # a nested settings table
    table = ".".join(names[:-1])
    return table, names[-1], info.description if info is not None else "a known setting"


def _unknown_keys(errors: list[dict], file: str) -> list[str]:
    """One line per table with unknown keys (typos are the usual cause: list what is allowed)."""
    by_table: dict[tuple, list[str]] = {}
    for err in errors:
        *parent, key = err["loc"]
        by_table.setdefault(tuple(parent), []).append(str(key))
    lines = []
    for parent, keys in by_table.items():
        if not parent:
            lines.append(MSG_UNKNOWN_TABLE.format(file=file, keys=sorted(keys)))
            continue
        model: type[BaseModel] = _FileSettings
        for name in parent:
            model = model.model_fields[name].annotation
        expected = list(model.model_fields)
        lines.append(MSG_UNKNOWN_KEY.format(file=file, keys=sorted(keys), section=".".join(parent),
                                            expected=expected))
    return lines


def _describe(exc: ValidationError, file: str) -> str:
    errors = exc.errors()
    extra = [e for e in errors if e["type"] == "extra_forbidden"]
    lines = _unknown_keys(extra, file)
    for err in errors:
        if err["type"] == "extra_forbidden":
            continue
        table, key, expected = _field_at(err["loc"])
        where = f"[{table}] {key}" if table else key
        detail = f" ({err['ctx']['error']})" if err["type"] == "value_error" else ""
        lines.append(MSG_BAD_SETTING.format(file=file, where=where, expected=expected,
                                            value=_shown(err["input"]), detail=detail))
    return "\n".join(lines)


def _validate(raw: dict, source: str) -> dict:
    """The settings given in `raw` (only those), type- and range-checked; ConfigError otherwise."""
    try:
        parsed = _FileSettings.model_validate(_plain(raw))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    return parsed.model_dump(exclude_unset=True).get("audit", {})


def _build(raw: dict, source: str) -> AuditConfig:
    """Validated settings over the dataclass defaults."""
    settings = _validate(raw, source)
    policy, lender = settings.pop("policy", {}), settings.pop("lender", {})
    flags = dict(settings.pop("flags", {}))
    if "enabled" in flags:
        flags["enabled"] = tuple(flags["enabled"])
    settings_notice, settings_cf = settings.pop("notice", {}), settings.pop("counterfactuals", {})
    governance = dict(settings.pop("governance", {}))
    if "sign_off" in governance:
        governance["sign_off"] = tuple(governance["sign_off"])
    gates = dict(settings.pop("gates", {}))
    if "fail_on_verdicts" in gates:
        gates["fail_on_verdicts"] = tuple(gates["fail_on_verdicts"])
    shift = dict(settings.pop("shift", {}))
    if "checks" in shift:
        shift["checks"] = tuple(shift["checks"])
    return AuditConfig(**settings, policy=ThresholdPolicy(**policy), lender=Lender(**lender), flags=FlagConfig(**flags),
                       gates=GatePolicy(**gates), governance=Governance(**governance), shift=ShiftSettings(**shift),
                       notice=NoticeSettings(**settings_notice), counterfactuals=CounterfactualSettings(**settings_cf))


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively: the schema sees what TOML and JSON give (strict mode)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


MAX_CONFIG_BYTES = 1_000_000  # a configuration is a few kB; a larger file is refused unread


def _read_toml(file: Path) -> dict:
    try:
        return toml_loads(read_regular(file, MAX_CONFIG_BYTES).decode("utf-8"))  # a fifo or device: refused, not read
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(MSG_NOT_TOML.format(file=file, reason=exc)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(MSG_NOT_TOML.format(file=file, reason=f"not UTF-8 text: {exc.reason}")) from None
    except FileTooLarge as exc:
        raise ConfigError(MSG_UNREADABLE.format(file=file, reason=f"{exc.size:,} bytes; expected at most "
                                                                  f"{MAX_CONFIG_BYTES:,}")) from None
    except NotRegularFile as exc:
        raise ConfigError(MSG_UNREADABLE.format(file=file, reason=f"it is {exc.kind}, not a regular file")) from None
    except OSError as exc:
        raise ConfigError(MSG_UNREADABLE.format(file=file, reason=exc.strerror or exc)) from None


def load_config(path: str | Path | None) -> AuditConfig:
    """Read `[audit]` and its tables (policy, lender, governance, flags, notice, counterfactuals, gates, shift)."""
    if path is None:
        return AuditConfig()
    file = Path(path)
    return _build(_read_toml(file), str(file))
