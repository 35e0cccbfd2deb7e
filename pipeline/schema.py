"""The one place the code asks what a credit-card applicant record is.

The record is declared in the schema file `pipeline/schemas/uci_credit_card.toml`
(read and checked by `pipeline.schema_file`); this module turns it into the
names every other module (loader, model, explainers, fairness, reports) uses:
column names, allowed values, human labels, feature groups, which columns are
protected and which a person can change. Nothing else hard-codes a column
name, so a report label or a range is changed in the schema file once.

What a counterfactual may propose is declared in the schema file as data, never in the
search (pipeline.explain._counterfactual reads it; pipeline.explain's
`plausibility_violations` checks any counterfactual against it):

- `Feature.changed_by`: who can change a value going forward: nobody
  (history, bills, age, personal details), the applicant (last month's
  repayment status and payment), or the lender (the credit limit: offered to
  an applicant only as a limit they could request, never as their action);
- `Feature.direction` for amounts; for a repayment status, `unordered_codes`
  (-2 "no balance to pay", -1 "paid in full", 0 "paid the minimum" are
  categories, not an order: -2 is not "better" than -1 because it is
  smaller) and `improves_to`, the statuses each status can become by the
  applicant's own action, easiest first;
- `Feature.max_factor`: how far a value may move, as a factor of the
  current one (a limit at most doubled or halved);
- `Feature.pays` (`PaysBill`): the bill a payment pays and the status of
  that month, which relate three fields: a payment no larger than what was
  owed plus a stated slack; a "settled" status ("paid in full", "no
  balance to pay") only when the payment covers what was owed, "paid the
  minimum" only with at least the minimum paid; and no months late once
  everything owed was paid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

from .schema_file import FeatureSpec, SchemaSpec, shipped_schema

Kind = Literal["amount", "count", "category", "repayment_status"]
Direction = Literal["none", "increase", "decrease", "any"]
ChangedBy = Literal["nobody", "applicant", "lender"]

# The schema file calls an ordered status "status"; the code keeps its historic name for the kind.
_KIND_IN_CODE = {"status": "repayment_status"}
T = TypeVar("T")
MSG_DEFAULT_NEEDS = "the default schema file must declare {key}"
MSG_NOT_NUMERIC = (
    "feature {name!r}: date features and text codes are checked by `credit-audit check-schema` but are not yet"
    " model inputs"
)


@dataclass(frozen=True)
class PaysBill:
    """A payment and the bill it pays: `payment` (this feature) pays `bill`; `status` records that month.

    In the data, the amount paid in a month pays the previous month's bill
    (PAY_AMT1, September, pays BILL_AMT2, August). What was owed is
    `max(bill, 0)`. Relations every counterfactual keeps
    (`pipeline.explain.plausibility_violations`), with the share of the real
    rows that hold them (README, "Counterfactuals"):

    - payment <= owed * (1 + slack_fraction) + slack_amount: no paying far
      more than was owed (99.3% of the real rows);
    - a status that says the bill was paid needs that payment:
      `status` c in `min_share` only when payment >= owed * min_share[c] *
      (1 - slack_fraction): "no balance to pay" and "paid in full" the whole
      bill, "paid the minimum" 2% of it (99.9% of the real "paid the
      minimum" rows pay at least 2% of the bill; none pays nothing);
    - payment >= owed > 0 leaves `status` not late: months late (a code
      outside the status feature's `unordered_codes`) cannot follow paying
      everything that was owed.
    """

    bill: str
    status: str
    slack_fraction: float  # these three: the schema file's [payment_rules]
    slack_amount: float
    min_share: dict[int, float]

    def owed(self, bill: float) -> float:
        return max(float(bill), 0.0)

    def cap(self, bill: float) -> float:
        """The largest payment a counterfactual may propose for this bill."""
        return self.owed(bill) * (1.0 + self.slack_fraction) + self.slack_amount


@dataclass(frozen=True)
class Feature:
    """One raw applicant feature and everything downstream needs to know.

    `codes` lists the documented values of a categorical column; `extra_codes`
    the values that occur in real copies of the data but that the data
    dictionary does not document: accepted, and reported as a data-quality
    finding. `changed_by`, `direction`, `improves_to`, `max_factor` and
    `pays` say who could change the value going forward, how, and within
    which bounds and relations (the module docstring; used by
    counterfactuals: history and age cannot change); `mutable` is whether
    anyone can.
    """

    name: str
    label: str
    kind: Kind
    group: str
    minimum: float
    maximum: float
    codes: dict[int, str] = field(default_factory=dict)
    extra_codes: dict[int, str] = field(default_factory=dict)
    protected: bool = False
    changed_by: ChangedBy = "nobody"
    direction: Direction = "none"
    unit: str = ""
    month: str = ""  # for the monthly series: the month the value is about
    unordered_codes: tuple[int, ...] = ()  # codes that are categories, not points on the scale of the others
    improves_to: dict[int, tuple[int, ...]] = field(default_factory=dict)  # code -> reachable codes, easiest first
    max_factor: float | None = None  # a change stays within [value / max_factor, value * max_factor]
    pays: PaysBill | None = None

    @property
    def mutable(self) -> bool:
        """Whether anyone (the applicant or the lender) can change this value going forward."""
        return self.changed_by != "nobody" and (self.direction != "none" or bool(self.improves_to))

    @property
    def is_categorical(self) -> bool:
        return self.kind in ("category", "repayment_status")

    @property
    def allowed_codes(self) -> dict[int, str]:
        return {**self.codes, **self.extra_codes}

    def describe(self, value: float) -> str:
        """Human-readable rendering of one value of this feature."""
        if self.is_categorical:
            meaning = self.allowed_codes.get(int(value))
            return meaning if meaning is not None else f"code {value:g}"
        if self.kind == "amount" and self.unit:  # a currency: "NT$ 50,000"
            return f"{self.unit} {value:,.0f}"
        return f"{value:g}{(' ' + self.unit) if self.unit else ''}"


def _feature(spec: SchemaSpec, f: FeatureSpec) -> Feature:
    """The runtime form of one declared feature (numbers and codes typed, rules as tuples)."""
    rules = spec.payment_rules
    pays = None
    if f.change.pays is not None and rules is not None:
        pays = PaysBill(bill=f.change.pays.bill, status=f.change.pays.status, slack_fraction=rules.slack_fraction,
                        slack_amount=rules.slack_amount, min_share={int(k): v for k, v in rules.min_share.items()})
    codes, extra = spec.codes(f), spec.undocumented(f)
    every = [*codes, *extra]
    if f.kind == "date" or any(isinstance(c, str) for c in every):
        raise ValueError(MSG_NOT_NUMERIC.format(name=f.name))
    return Feature(
        name=f.name,
        label=f.label,
        kind=_KIND_IN_CODE.get(f.kind, f.kind),  # type: ignore[arg-type]
        group=f.group,
        minimum=f.minimum if f.minimum is not None else min(every),  # type: ignore[arg-type]
        maximum=f.maximum if f.maximum is not None else max(every),  # type: ignore[arg-type]
        codes=codes,  # type: ignore[arg-type]
        extra_codes=extra,  # type: ignore[arg-type]
        protected=f.protected,
        changed_by=f.change.by,
        direction=f.change.direction,
        unit=f.unit,
        month=f.month,
        unordered_codes=tuple(f.unordered_codes),
        improves_to={int(k): tuple(v) for k, v in f.change.improves_to.items()},
        max_factor=f.change.max_factor,
        pays=pays,
    )


def features_of(spec: SchemaSpec) -> tuple[Feature, ...]:
    """Every feature of a schema, in the file's order, in the form the model and explainers use."""
    return tuple(_feature(spec, f) for f in spec.features)


def _declared(value: T | None, key: str) -> T:
    """A key the default schema must declare (the UCI flow needs it; a lender's schema may leave it out)."""
    if value is None:
        raise ValueError(MSG_DEFAULT_NEEDS.format(key=key))
    return value


SPEC: SchemaSpec = shipped_schema()
FEATURES: tuple[Feature, ...] = features_of(SPEC)
ID_COLUMN: str = _declared(SPEC.id_column, "id_column")
LABEL_COLUMN: str = SPEC.label.column
LABEL_TEXT: str = SPEC.label.text
LABEL_MEANINGS: dict[int | str, str] = SPEC.label_values
# Other names of the label and of features in real copies of the data (the loader maps them).
LABEL_ALIASES: tuple[str, ...] = (LABEL_COLUMN, *SPEC.label.aliases)
ALIASES: dict[str, str] = {alias: f.name for f in SPEC.features for alias in f.aliases}
_STATUS = next(f for f in FEATURES if f.kind == "repayment_status")
PAY_STATUS_MEANINGS: dict[int, str] = dict(_STATUS.codes)
# -2, -1 and 0 say how an account was used and paid, 1..9 how many months it is late: only the
# months late are an order. "No balance to pay" is not something a person can do: it is not a target.
PAY_STATUS_CATEGORIES: tuple[int, ...] = _STATUS.unordered_codes
_RULES = _declared(SPEC.payment_rules, "[payment_rules]")
PAID_IN_FULL, PAID_MINIMUM = _RULES.paid_in_full, _RULES.paid_minimum
# How notices name a feature group: its heading over the applicant's data, and a reason's subject.
GROUP_TITLES: dict[str, str] = {name: g.title for name, g in SPEC.groups.items()}
REASON_SUBJECTS: dict[str, str] = {name: g.reason_subject for name, g in SPEC.groups.items() if g.reason_subject}

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
PROTECTED: tuple[str, ...] = tuple(f.name for f in FEATURES if f.protected)
# Audited but, by default, not model inputs: a principal reason may never be withheld, and an attribute
# that may not be given as a reason must therefore not be an input (README "Protected attributes":
# the choice and its measured AUC cost). `protected_inputs = true` keeps them in; they are then
# disclosed as reasons like any other input.
EXCLUDED_FROM_MODEL: tuple[str, ...] = PROTECTED
DEFAULT_MODEL_FEATURES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n not in EXCLUDED_FROM_MODEL)

_BANDED = next(f for f in SPEC.features if f.bands)
AGE_BANDS: tuple[tuple[int, int, str], ...] = tuple((b.low, b.high, b.label) for b in _BANDED.bands)


def feature_groups(names: tuple[str, ...] | list[str] = FEATURE_NAMES) -> dict[str, list[str]]:
    """Feature groups in schema order, restricted to `names` (for grouped explanations)."""
    groups: dict[str, list[str]] = {}
    for f in FEATURES:
        if f.name in names:
            groups.setdefault(f.group, []).append(f.name)
    return groups


# How the fairness audit names a banded attribute ("AGE band") and an intersection ("SEX x AGE band").
AGE_BAND_SUFFIX = " band"
INTERSECTION_SEP = " x "


def attribute_label(name: str) -> str:
    """The reader's name of an audited attribute: "SEX x AGE band" -> "Sex x age band"."""
    parts = []
    for part in name.split(INTERSECTION_SEP):
        column, banded, _ = part.partition(AGE_BAND_SUFFIX)
        label = BY_NAME[column].label if column in BY_NAME else column
        parts.append(label + (AGE_BAND_SUFFIX if banded else ""))
    return INTERSECTION_SEP.join([parts[0], *(p[:1].lower() + p[1:] for p in parts[1:])])


def age_band(age: float) -> str:
    """The reporting band of an age, used by fairness and reports alike."""
    for low, high, label in AGE_BANDS:
        if low <= age <= high:
            return label
    raise ValueError(f"{_BANDED.name} must be between {AGE_BANDS[0][0]} and {AGE_BANDS[-1][1]}, got {age}")
