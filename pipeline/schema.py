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
from pathlib import Path
from typing import Literal

from .layout import SCHEMA_FILE
from .schema_file import (
    DEFAULT_SCHEMA,
    FeatureSpec,
    SchemaSpec,
    load_schema,
    parse_schema,
    schema_bytes,
    shipped_schema,
)

Kind = Literal["amount", "count", "category", "repayment_status"]
Direction = Literal["none", "increase", "decrease", "any"]
ChangedBy = Literal["nobody", "applicant", "lender"]

# The schema file calls an ordered status "status"; the code keeps its historic name for the kind.
_KIND_IN_CODE = {"status": "repayment_status"}
MSG_DATE_INPUT = (
    "feature {name!r}: date features are checked by `credit-audit check-schema` but are not model inputs;"
    " give the model a number derived from the date (e.g. months since) instead"
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
    # A category written as text in the data ("no checking account"): the model, explainers and tables
    # see its position in this tuple (documented codes first, in the schema file's order), so every
    # model input is a number; `codes` then maps those positions to their meanings.
    text_codes: tuple[str, ...] = ()

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
    if f.kind == "date":
        raise ValueError(MSG_DATE_INPUT.format(name=f.name))
    codes, extra = spec.codes(f), spec.undocumented(f)
    text = tuple(str(c) for c in (*codes, *extra)) if any(isinstance(c, str) for c in (*codes, *extra)) else ()
    if text:  # text codes reach the model as their position in the schema's list (`Feature.text_codes`)
        codes = {i: meaning for i, meaning in enumerate(codes.values())}
        extra = {len(codes) + i: meaning for i, meaning in enumerate(extra.values())}
    every = [*codes, *extra]
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
        text_codes=text,
    )


def features_of(spec: SchemaSpec) -> tuple[Feature, ...]:
    """Every feature of a schema, in the file's order, in the form the model and explainers use."""
    return tuple(_feature(spec, f) for f in spec.features)


def derive(spec: SchemaSpec) -> dict[str, object]:
    """Every name this module exposes, derived from one schema (see `activate`)."""
    features = features_of(spec)
    status = next((f for f in features if f.kind == "repayment_status"), None)
    rules = spec.payment_rules
    protected = tuple(f.name for f in features if f.protected)
    names = tuple(f.name for f in features)
    banded = next((f for f in spec.features if f.bands), None)
    return {
        "SPEC": spec,
        "FEATURES": features,
        # A schema without an id column numbers its rows from 1; "ID" is then only the table's header name.
        "ID_COLUMN": spec.id_column or DEFAULT_ID_COLUMN,
        "LABEL_COLUMN": spec.label.column,
        "LABEL_TEXT": spec.label.text,
        "LABEL_MEANINGS": spec.label_values,
        "ADVERSE": spec.label.adverse,
        # Other names of the label and of features in real copies of the data (the loader maps them).
        "LABEL_ALIASES": (spec.label.column, *spec.label.aliases),
        "ALIASES": {alias: f.name for f in spec.features for alias in f.aliases},
        # -2, -1 and 0 say how an account was used and paid, 1..9 how many months it is late: only the
        # months late are an order. "No balance to pay" is not something a person can do: not a target.
        "PAY_STATUS_MEANINGS": dict(status.codes) if status else {},
        "PAY_STATUS_CATEGORIES": status.unordered_codes if status else (),
        "PAID_IN_FULL": rules.paid_in_full if rules else None,
        "PAID_MINIMUM": rules.paid_minimum if rules else None,
        # How notices name a feature group: its heading over the applicant's data, and a reason's subject.
        "GROUP_TITLES": {name: g.title for name, g in spec.groups.items()},
        "REASON_SUBJECTS": {name: g.reason_subject for name, g in spec.groups.items() if g.reason_subject},
        "FEATURE_NAMES": names,
        "BY_NAME": {f.name: f for f in features},
        "PROTECTED": protected,
        # Audited but, by default, not model inputs: a principal reason may never be withheld, and an
        # attribute that may not be given as a reason must therefore not be an input (README "Protected
        # attributes": the choice and its measured AUC cost). `protected_inputs = true` keeps them in;
        # they are then disclosed as reasons like any other input.
        "EXCLUDED_FROM_MODEL": protected,
        "DEFAULT_MODEL_FEATURES": tuple(n for n in names if n not in protected),
        "BANDED": banded.name if banded else None,  # the attribute audited in bands (age)
        "AGE_BANDS": tuple((b.low, b.high, b.label) for b in banded.bands) if banded else (),
        # How notices and the report speak of the data and its outcome: the schema file's words, so a
        # lender's data never reads as another data set's ([label] outcome and [source]; README).
        "OUTCOME": spec.label.outcome or f'the outcome "{spec.label.values[str(spec.label.adverse)]}"',
        "SUBJECTS": spec.source.subjects,
        "RECORDS": spec.source.records,
        "GRANTED": spec.source.granted,
        "DATA_DESCRIPTION": spec.source.description,
        "POPULATION": spec.source.population,
        "DATA_WINDOW": spec.source.window,
    }


def activate(spec: SchemaSpec) -> None:
    """Make `spec` the schema every module reads through this module's names.

    One process audits one data layout at a time, so the schema is process
    state: `credit-audit run --schema FILE` activates the lender's schema
    before loading, and `reports.load_run` activates the schema a run was
    made with before rendering it. Modules read the names as `S.NAME` at call
    time and never copy them at import, so an activation reaches all of them
    (tests/test_architecture.py checks that no module copies one).
    """
    globals().update(derive(spec))


def active_spec() -> SchemaSpec:
    """The schema the process audits now."""
    return SPEC


def read_schema(path: str | Path | None) -> tuple[SchemaSpec, bytes, str]:
    """The schema file at `path` (None: the shipped default), checked, with its exact bytes and the
    name a run records for it (the default's package path)."""
    if path is None:
        from importlib import resources

        raw = (resources.files("pipeline") / "schemas" / DEFAULT_SCHEMA).read_bytes()
        shown = f"pipeline/schemas/{DEFAULT_SCHEMA}"
        return parse_schema(raw.decode("utf-8"), shown), raw, shown
    raw = schema_bytes(path)  # read once: the bytes parsed are the bytes the run records and copies
    return parse_schema(raw.decode("utf-8"), path), raw, str(path)


def activate_for_run(run_dir: str | Path) -> None:
    """Activate the schema a finished run was made with: its copy of the lender's file, else the default."""
    copy = Path(run_dir) / SCHEMA_FILE
    activate(load_schema(copy) if copy.is_file() else shipped_schema())


DEFAULT_ID_COLUMN = "ID"
# The default schema's names; `activate` rebinds every one of them (tests/test_architecture.py reads this list).
_DEFAULT = derive(shipped_schema())
SPEC: SchemaSpec = _DEFAULT["SPEC"]  # type: ignore[assignment]
FEATURES: tuple[Feature, ...] = _DEFAULT["FEATURES"]  # type: ignore[assignment]
ID_COLUMN: str = _DEFAULT["ID_COLUMN"]  # type: ignore[assignment]
LABEL_COLUMN: str = _DEFAULT["LABEL_COLUMN"]  # type: ignore[assignment]
LABEL_TEXT: str = _DEFAULT["LABEL_TEXT"]  # type: ignore[assignment]
LABEL_MEANINGS: dict[int | str, str] = _DEFAULT["LABEL_MEANINGS"]  # type: ignore[assignment]
ADVERSE: int | str = _DEFAULT["ADVERSE"]  # type: ignore[assignment]
LABEL_ALIASES: tuple[str, ...] = _DEFAULT["LABEL_ALIASES"]  # type: ignore[assignment]
ALIASES: dict[str, str] = _DEFAULT["ALIASES"]  # type: ignore[assignment]
PAY_STATUS_MEANINGS: dict[int, str] = _DEFAULT["PAY_STATUS_MEANINGS"]  # type: ignore[assignment]
PAY_STATUS_CATEGORIES: tuple[int, ...] = _DEFAULT["PAY_STATUS_CATEGORIES"]  # type: ignore[assignment]
PAID_IN_FULL: int | None = _DEFAULT["PAID_IN_FULL"]  # type: ignore[assignment]
PAID_MINIMUM: int | None = _DEFAULT["PAID_MINIMUM"]  # type: ignore[assignment]
GROUP_TITLES: dict[str, str] = _DEFAULT["GROUP_TITLES"]  # type: ignore[assignment]
REASON_SUBJECTS: dict[str, str] = _DEFAULT["REASON_SUBJECTS"]  # type: ignore[assignment]
FEATURE_NAMES: tuple[str, ...] = _DEFAULT["FEATURE_NAMES"]  # type: ignore[assignment]
BY_NAME: dict[str, Feature] = _DEFAULT["BY_NAME"]  # type: ignore[assignment]
PROTECTED: tuple[str, ...] = _DEFAULT["PROTECTED"]  # type: ignore[assignment]
EXCLUDED_FROM_MODEL: tuple[str, ...] = _DEFAULT["EXCLUDED_FROM_MODEL"]  # type: ignore[assignment]
DEFAULT_MODEL_FEATURES: tuple[str, ...] = _DEFAULT["DEFAULT_MODEL_FEATURES"]  # type: ignore[assignment]
BANDED: str | None = _DEFAULT["BANDED"]  # type: ignore[assignment]
AGE_BANDS: tuple[tuple[int, int, str], ...] = _DEFAULT["AGE_BANDS"]  # type: ignore[assignment]
OUTCOME: str = _DEFAULT["OUTCOME"]  # type: ignore[assignment]
SUBJECTS: str = _DEFAULT["SUBJECTS"]  # type: ignore[assignment]
RECORDS: str = _DEFAULT["RECORDS"]  # type: ignore[assignment]
GRANTED: str = _DEFAULT["GRANTED"]  # type: ignore[assignment]
DATA_DESCRIPTION: str = _DEFAULT["DATA_DESCRIPTION"]  # type: ignore[assignment]
POPULATION: str = _DEFAULT["POPULATION"]  # type: ignore[assignment]
DATA_WINDOW: str = _DEFAULT["DATA_WINDOW"]  # type: ignore[assignment]


def feature_groups(names: tuple[str, ...] | list[str] | None = None) -> dict[str, list[str]]:
    """Feature groups in schema order, restricted to `names` (default: every feature; for grouped explanations)."""
    names = FEATURE_NAMES if names is None else names
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
    raise ValueError(f"{BANDED} must be between {AGE_BANDS[0][0]} and {AGE_BANDS[-1][1]}, got {age}")
