"""Audit configuration: every knob of a run in one typed, recorded object.

A run's configuration is written into audit.json, so any figure in a report
can be traced to the settings that produced it. Loaded from an optional TOML
file; unknown keys are an error, not silently ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .flags import FlagConfig
from .policy import ThresholdPolicy

MSG_UNKNOWN_KEY = "{file}: unknown setting(s) {keys} in [{section}]; expected some of {expected}"


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
class AuditConfig:
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
        if "governance" in d:
            d["governance"] = _governance(d["governance"])
        if "flags" in d:
            d["flags"] = _flag_config(d["flags"])
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
    """Read `[audit]`, `[audit.policy]`, `[audit.lender]`, `[audit.governance]` and `[audit.flags]` (all optional)."""
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
    if "governance" in raw:
        raw["governance"] = _governance(_checked(raw["governance"], Governance, file, "audit.governance"))
    if "flags" in raw:
        raw["flags"] = _flag_config(_checked(raw["flags"], FlagConfig, file, "audit.flags"))
    return AuditConfig(**raw)


def _flag_config(d: dict) -> FlagConfig:
    d = dict(d)
    if "enabled" in d:
        d["enabled"] = tuple(d["enabled"])
    return FlagConfig(**d)


def _governance(d: dict) -> Governance:
    d = dict(d)
    if "sign_off" in d:
        d["sign_off"] = tuple(d["sign_off"])
    return Governance(**d)
