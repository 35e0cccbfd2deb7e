"""The one place that says what a credit-card applicant record is.

Every other module (loader, model, explainers, fairness, reports) asks this
module for column names, allowed values, human labels, feature groups, which
columns are protected and which a person can change. Nothing else hard-codes
a column name, so a report label or a range is changed here once.

What a counterfactual may propose is declared here as data, never in the
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
from typing import Literal

Kind = Literal["amount", "count", "category", "repayment_status"]
Direction = Literal["none", "increase", "decrease", "any"]
ChangedBy = Literal["nobody", "applicant", "lender"]

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
    slack_fraction: float = 0.10
    slack_amount: float = 1_000.0
    min_share: dict[int, float] = field(default_factory=lambda: {-2: 1.0, -1: 1.0, 0: 0.02})

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
        if self.unit == "NT$":
            return f"NT$ {value:,.0f}"
        return f"{value:g}{(' ' + self.unit) if self.unit else ''}"


_MONTHS = ["September", "August", "July", "June", "May", "April"]
_PAY_NAMES = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
_AMOUNT_MAX = 10_000_000.0


# -2, -1 and 0 say how an account was used and paid, 1..9 how many months it is late: only the
# months late are an order. "No balance to pay" is not something a person can do: it is not a target.
PAY_STATUS_CATEGORIES: tuple[int, ...] = (-2, -1, 0)
PAID_IN_FULL, PAID_MINIMUM = -1, 0


def _status_improvements(codes: dict[int, str]) -> dict[int, tuple[int, ...]]:
    """From each status, what the applicant's own payments could have made it, easiest first.

    k months late -> fewer months late, then "paid the minimum", then "paid in full";
    "paid the minimum" -> "paid in full"; "paid in full" and "no balance to pay" are already best.
    """
    late = sorted(c for c in codes if c not in PAY_STATUS_CATEGORIES)
    out: dict[int, tuple[int, ...]] = {PAID_MINIMUM: (PAID_IN_FULL,)}
    for k in late:
        out[k] = (*range(k - 1, 0, -1), PAID_MINIMUM, PAID_IN_FULL)
    return out


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
        changed_by="applicant" if latest else "nobody",
        month=_MONTHS[i],
        unordered_codes=PAY_STATUS_CATEGORIES,
        improves_to=_status_improvements(PAY_STATUS_MEANINGS) if latest else {},
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
        changed_by="applicant" if latest else "nobody",
        direction="increase" if latest else "none",
        month=_MONTHS[i],
        # the payment of a month pays the previous month's bill (the last month has no bill in the data)
        pays=PaysBill(bill=f"BILL_AMT{i + 2}", status=_PAY_NAMES[i]) if i + 1 < len(_MONTHS) else None,
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
        changed_by="lender",  # the lender sets it: an applicant can only request another limit
        direction="any",
        max_factor=2.0,
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
# Audited but, by default, not model inputs: a principal reason may never be withheld, and an attribute
# that may not be given as a reason must therefore not be an input (README "Protected attributes":
# the choice and its measured AUC cost). `protected_inputs = true` keeps them in; they are then
# disclosed as reasons like any other input.
EXCLUDED_FROM_MODEL: tuple[str, ...] = PROTECTED
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
