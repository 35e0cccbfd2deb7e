"""The one place that says what a credit-card applicant record is.

Every other module (loader, model, explainers, fairness, reports) asks this
module for column names, allowed values, human labels, feature groups, which
columns are protected and which a person can change. Nothing else hard-codes
a column name, so a report label or a range is changed here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["amount", "count", "category", "repayment_status"]
Direction = Literal["none", "increase", "decrease", "any"]

ID_COLUMN = "ID"
LABEL_COLUMN = "default.payment.next.month"
LABEL_TEXT = "Defaulted on the next month's payment"

PAY_STATUS_MEANINGS: dict[int, str] = {
    -2: "no balance to pay",
    -1: "paid in full",
    0: "paid the minimum (revolving credit)",
    **{m: f"{m} month{'s' if m > 1 else ''} late" for m in range(1, 10)},
}


@dataclass(frozen=True)
class Feature:
    """One raw applicant feature and everything downstream needs to know.

    `codes` lists the documented values of a categorical column; `extra_codes`
    the values that occur in real copies of the data but that the data
    dictionary does not document: accepted, and reported as a data-quality
    finding. `mutable`/`direction` say whether and how an applicant could
    change the value (used by counterfactuals: history and age cannot change).
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
    mutable: bool = False
    direction: Direction = "none"
    unit: str = ""
    month: str = ""  # for the monthly series: the month the value is about

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
        if self.unit == "NT$":
            return f"NT$ {value:,.0f}"
        return f"{value:g}{(' ' + self.unit) if self.unit else ''}"


_MONTHS = ["September", "August", "July", "June", "May", "April"]
_PAY_NAMES = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
_AMOUNT_MAX = 10_000_000.0


def _repayment(i: int, name: str) -> Feature:
    latest = i == 0
    return Feature(
        name=name,
        label=f"Repayment status {'last month' if latest else f'in {_MONTHS[i]}'}",
        kind="repayment_status",
        group="repayment history",
        minimum=-2,
        maximum=9,
        codes=dict(PAY_STATUS_MEANINGS),
        mutable=latest,
        direction="decrease" if latest else "none",
        month=_MONTHS[i],
    )


def _bill(i: int) -> Feature:
    return Feature(
        name=f"BILL_AMT{i + 1}",
        label=f"Bill statement in {_MONTHS[i]}",
        kind="amount",
        group="bill amounts",
        minimum=-_AMOUNT_MAX,
        maximum=_AMOUNT_MAX,
        unit="NT$",
        month=_MONTHS[i],
    )


def _payment(i: int) -> Feature:
    latest = i == 0
    return Feature(
        name=f"PAY_AMT{i + 1}",
        label=f"Amount paid in {_MONTHS[i]}",
        kind="amount",
        group="payment amounts",
        minimum=0,
        maximum=_AMOUNT_MAX,
        unit="NT$",
        mutable=latest,
        direction="increase" if latest else "none",
        month=_MONTHS[i],
    )


FEATURES: tuple[Feature, ...] = (
    Feature(
        "LIMIT_BAL",
        "Credit limit",
        "amount",
        "credit limit",
        minimum=1,
        maximum=_AMOUNT_MAX,
        unit="NT$",
        mutable=True,
        direction="any",
    ),
    Feature("SEX", "Sex", "category", "personal", 1, 2, codes={1: "male", 2: "female"}, protected=True),
    Feature(
        "EDUCATION",
        "Education",
        "category",
        "personal",
        0,
        6,
        codes={1: "graduate school", 2: "university", 3: "high school", 4: "other"},
        extra_codes={0: "undocumented code 0", 5: "undocumented code 5", 6: "undocumented code 6"},
        protected=True,
    ),
    Feature(
        "MARRIAGE",
        "Marital status",
        "category",
        "personal",
        0,
        3,
        codes={1: "married", 2: "single", 3: "other"},
        extra_codes={0: "undocumented code 0"},
        protected=True,
    ),
    Feature("AGE", "Age", "count", "personal", 18, 120, protected=True, unit="years"),
    *(_repayment(i, n) for i, n in enumerate(_PAY_NAMES)),
    *(_bill(i) for i in range(6)),
    *(_payment(i) for i in range(6)),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
PROTECTED: tuple[str, ...] = tuple(f.name for f in FEATURES if f.protected)
# Audited but, by default, not model inputs: see README "Protected attributes".
EXCLUDED_FROM_MODEL: tuple[str, ...] = ("SEX", "MARRIAGE")
DEFAULT_MODEL_FEATURES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n not in EXCLUDED_FROM_MODEL)

AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (18, 29, "under 30"),
    (30, 39, "30-39"),
    (40, 49, "40-49"),
    (50, 120, "50 and over"),
)


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
    raise ValueError(f"AGE must be between 18 and 120, got {age}")
