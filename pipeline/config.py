"""Audit configuration: every knob of a run in one typed, recorded object.

A run's configuration is written into audit.json, so any figure in a report
can be traced to the settings that produced it. Loaded from an optional TOML
file; unknown keys are an error, not silently ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .constants import COUNTERFACTUAL_MARGIN
from .flags import FlagConfig
from .policy import ThresholdPolicy

MSG_UNKNOWN_KEY = "{file}: unknown setting(s) {keys} in [{section}]; expected some of {expected}"
MSG_REGIME = "{file}: [audit.notice] regime must be one of {choices}, got {value!r}"
MSG_FACTOR = "{file}: [audit.counterfactuals] {key} must be {expected}, got {value!r}"
REGIMES = ("eu", "us")


@dataclass(frozen=True)
class Lender:
    """Who took the decision and how an applicant reaches a human (GDPR Art. 13/22, Reg B)."""

    name: str = "Example Card Bank Ltd."
    address: str = "1 Example Street, Taipei, Taiwan"
    contact: str = "credit-decisions@example-bank.test, +886 2 0000 0000"
    review_contact: str = "reviews@example-bank.test (quote your notice reference)"
    data_protection_officer: str = "dpo@example-bank.test"


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
class AuditConfig:
    seed: int = 0
    device: str = "auto"
    test_fraction: float = 0.2
    policy: ThresholdPolicy = field(default_factory=ThresholdPolicy)
    surrogate_depth: int = 4
    background_size: int = 100
    protected_inputs: bool = False
    lender: Lender = field(default_factory=Lender)
    flags: FlagConfig = field(default_factory=FlagConfig)
    notice: NoticeSettings = field(default_factory=NoticeSettings)
    counterfactuals: CounterfactualSettings = field(default_factory=CounterfactualSettings)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AuditConfig:
        """Inverse of to_dict (flow parameters and deployments carry plain dicts)."""
        d = dict(d)
        if "policy" in d:
            d["policy"] = ThresholdPolicy(**d["policy"])
        if "lender" in d:
            d["lender"] = Lender(**d["lender"])
        if "flags" in d:
            d["flags"] = _flag_config(d["flags"])
        if "notice" in d:
            d["notice"] = NoticeSettings(**d["notice"])
        if "counterfactuals" in d:
            d["counterfactuals"] = CounterfactualSettings(**d["counterfactuals"])
        return cls(**d)

    def with_overrides(self, **kw: object) -> AuditConfig:
        """CLI flags win over the file; None means 'not given'."""
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def _checked(section: dict, cls: type, file: Path, name: str) -> dict:
    expected = [f.name for f in fields(cls)]
    unknown = sorted(set(section) - set(expected))
    if unknown:
        raise ValueError(MSG_UNKNOWN_KEY.format(file=file, keys=unknown, section=name, expected=expected))
    return section


def load_config(path: str | Path | None) -> AuditConfig:
    """Read `[audit]` and its tables (`policy`, `lender`, `flags`, `notice`, `counterfactuals`) from TOML (all optional)."""
    if path is None:
        return AuditConfig()
    file = Path(path)
    with file.open("rb") as fh:
        raw = tomllib.load(fh).get("audit", {})
    raw = dict(_checked(raw, AuditConfig, file, "audit"))
    if "policy" in raw:
        raw["policy"] = ThresholdPolicy(**_checked(raw["policy"], ThresholdPolicy, file, "audit.policy"))
    if "lender" in raw:
        raw["lender"] = Lender(**_checked(raw["lender"], Lender, file, "audit.lender"))
    if "flags" in raw:
        raw["flags"] = _flag_config(_checked(raw["flags"], FlagConfig, file, "audit.flags"))
    if "notice" in raw:
        raw["notice"] = NoticeSettings(**_checked(raw["notice"], NoticeSettings, file, "audit.notice"))
        if raw["notice"].regime not in REGIMES:
            raise ValueError(MSG_REGIME.format(file=file, choices=REGIMES, value=raw["notice"].regime))
    if "counterfactuals" in raw:
        settings = CounterfactualSettings(**_checked(raw["counterfactuals"], CounterfactualSettings, file,
                                                     "audit.counterfactuals"))
        if not 0 <= settings.margin < 0.5:
            raise ValueError(MSG_FACTOR.format(file=file, key="margin", expected="at least 0 and below 0.5",
                                               value=settings.margin))
        if not settings.max_limit_factor >= 1:
            raise ValueError(MSG_FACTOR.format(file=file, key="max_limit_factor", expected="at least 1",
                                               value=settings.max_limit_factor))
        raw["counterfactuals"] = settings
    return AuditConfig(**raw)


def _flag_config(d: dict) -> FlagConfig:
    d = dict(d)
    if "enabled" in d:
        d["enabled"] = tuple(d["enabled"])
    return FlagConfig(**d)
