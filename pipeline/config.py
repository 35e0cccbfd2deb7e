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
    """Read `[audit]`, `[audit.policy]`, `[audit.lender]` and `[audit.flags]` from a TOML file (all optional)."""
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
    return AuditConfig(**raw)


def _flag_config(d: dict) -> FlagConfig:
    d = dict(d)
    if "enabled" in d:
        d["enabled"] = tuple(d["enabled"])
    return FlagConfig(**d)
