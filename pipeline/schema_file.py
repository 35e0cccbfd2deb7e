"""The schema file: a lender's data declared in TOML, read into strict, checked models.

A schema file says what each column of the lender's file is (its kind, label,
unit, range, codes and their meanings), which columns are protected, which a
person can change and how (the rules counterfactuals keep), how features are
grouped for grouped Shapley values, and which label value is the adverse
outcome. `pipeline/schemas/uci_credit_card.toml` is the shipped default;
`pipeline.schema` derives the names the rest of the code uses from it.

Every key is checked: an unknown key, a wrong type or a rule that contradicts
another (a code outside the range, a relation to a column that does not
exist) is refused with the file, the key path and what was expected, since
a mistyped key silently ignored would change an audit without anyone seeing it.
README, "Your own data: the schema file", documents the format.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._io import FileTooLarge, NotRegularFile, read_regular
from ._toml import loads as toml_loads

FORMAT_VERSION = 1
DEFAULT_SCHEMA = "uci_credit_card.toml"
GERMAN_CREDIT_SCHEMA = "german_credit.toml"

Kind = Literal["amount", "count", "category", "status", "date"]
Direction = Literal["none", "increase", "decrease", "any"]
ChangedBy = Literal["nobody", "applicant", "lender"]
Number = int | float
Code = int | str

MSG_NOT_TOML = "{file}: not a valid TOML file ({reason})"
MSG_UNREADABLE = "{file}: cannot read the schema file ({reason})"
MSG_KEY = "{file}: {path}: {problem}"
MSG_MORE = "{file}: ... and {count} more problem(s) in the schema"
MSG_FORMAT = "expected format = {expected}, the only version this credit-audit reads, got {got!r}"
MSG_MIXED_CODES = "expected codes that are all whole numbers or all text, got {codes}"
MSG_NO_CODES = "a {kind} needs `codes` (a table of code = meaning, or the name of a [code_lists] entry)"
MSG_CODES_ON_NUMBER = "kind = \"{kind}\" has no codes; use kind = \"category\" or \"status\", or remove the codes"
MSG_UNKNOWN_LIST = "expected the name of a [code_lists] entry ({known}), got {name!r}"
MSG_RANGE = "expected minimum <= maximum, got {minimum!r} > {maximum!r}"
MSG_CODE_OUT_OF_RANGE = "code {code} is outside the range {minimum} to {maximum}"
MSG_CODE_UNKNOWN = "expected codes of this feature ({codes}), got {code!r}"
MSG_DUPLICATE = "the name {name!r} is declared twice (also in features[{first}])"
MSG_RESERVED = "{name!r} is the {role} column; it cannot also be a feature"
MSG_NOT_FEATURE = "expected the name of a feature of kind {what!r}, got {name!r}"
MSG_RULE_CODE = "expected a code of the status {status!r} ({codes}), got {code!r}"
MSG_TEXT_RANGE = "a feature with text codes has no numeric range; remove minimum/maximum"
MSG_NUMBER_RANGE = "kind = \"{kind}\" needs minimum and maximum (the range of valid values)"
MSG_DATE_RANGE = "a date needs minimum and maximum written as dates (1990-01-01), got {value!r}"
MSG_DIRECTION_KIND = "a direction applies to an amount or a count, this is a {kind}; use improves_to for a status"
MSG_IMPROVES_KIND = "improves_to applies to a status, this is a {kind}"
MSG_NOBODY = "change.by = \"nobody\" cannot have {key}: nobody can make that change"
MSG_PAYS_RULES = "a feature declares change.pays, so the file needs a [payment_rules] table"
MSG_GROUP = "expected the name of a feature group ({groups})"
MSG_NOT_A_FILE = "{file}: no such schema file"
MSG_NOT_REGULAR = "{file}: the schema file is {kind}, not a regular file; expected a TOML file"
MSG_CODE_SPACES = ("expected each code without spaces at either end (the data's cells are read stripped, so it could "
                   "never match), got {code!r}")
MSG_NOT_PROTECTED = "expected the name of a feature marked protected = true ({protected}), got {name!r}"
MSG_AGE_KIND = "expected a count feature with bands (the applicants' age), got {name!r}"

_INTEGER = re.compile(r"-?[0-9]+")
# A column name as a header cell holds it after stripping: no control characters, no space at either end,
# at most the loader's cell cap (pipeline._loading.MAX_CELL_CHARS).
_COLUMN = re.compile(r"[^\x00-\x1f\x7f\s](?:[^\x00-\x1f\x7f]{0,98}[^\x00-\x1f\x7f\s])?")
MSG_COLUMN = "expected a column name of 1 to 100 characters, without control characters or spaces at either end"
MAX_SCHEMA_BYTES = 1_000_000  # real schema files are ~10 kB; a larger file is refused unread
MSG_TOO_LARGE = "{file}: the schema file is {size:,} bytes; expected at most {limit:,}"


def _check_code_spacing(codes: list[str]) -> None:
    """The loader strips each cell before matching it to a code, so a code with a space at either end
    (or an empty one) could never match: it would be a dead code, or a twin of its stripped spelling."""
    for code in codes:
        if not code.strip() or code != code.strip():
            raise ValueError(MSG_CODE_SPACES.format(code=code))


def _column_name(name: str) -> str:
    if not _COLUMN.fullmatch(name):
        raise ValueError(MSG_COLUMN)
    return name


ColumnName = Annotated[str, AfterValidator(_column_name)]


class SchemaFileError(ValueError):
    """The schema file is not valid; the message names the file, the key path and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Pays(_Strict):
    """This payment pays `bill`; `status` records that month (the relation counterfactuals keep)."""

    bill: str
    status: str


class Change(_Strict):
    """Whether and how a person can change the value going forward (DESIGN.md: only real actions)."""

    by: ChangedBy = "nobody"
    direction: Direction = "none"
    improves_to: dict[str, list[int]] = Field(default_factory=dict)  # status code -> reachable codes, easiest first
    max_factor: float | None = Field(default=None, gt=1)
    pays: Pays | None = None

    @model_validator(mode="after")
    def _nobody_changes_nothing(self) -> Change:
        if self.by == "nobody":
            for key, set_ in (("direction", self.direction != "none"), ("improves_to", bool(self.improves_to)),
                              ("max_factor", self.max_factor is not None)):
                if set_:
                    raise ValueError(MSG_NOBODY.format(key=key))
        return self


class Band(_Strict):
    """A reporting band of a count (fairness reports ages in bands)."""

    low: int
    high: int
    label: str


class FeatureSpec(_Strict):
    """One column of the lender's file: what it is, what it may hold, who can change it."""

    name: ColumnName
    label: str = Field(min_length=1)
    kind: Kind
    group: str = Field(min_length=1)
    description: str = ""
    unit: str = ""
    month: str = ""
    aliases: list[ColumnName] = Field(default_factory=list)  # the column's other names in real copies of the data
    minimum: Number | dt.date | None = None
    maximum: Number | dt.date | None = None
    codes: dict[str, str] | str | None = None
    undocumented_codes: dict[str, str] = Field(default_factory=dict)
    unordered_codes: list[int] = Field(default_factory=list)
    protected: bool = False
    bands: list[Band] = Field(default_factory=list)
    change: Change = Field(default_factory=Change)

    @property
    def is_categorical(self) -> bool:
        return self.kind in ("category", "status")

    def code_table(self, lists: dict[str, dict[str, str]]) -> dict[str, str]:
        """The documented codes as written in the file (keys as text), a named list resolved."""
        if isinstance(self.codes, str):
            return lists[self.codes]
        return dict(self.codes or {})

    def _check_codes(self, lists: dict[str, dict[str, str]]) -> None:
        if self.codes is None:
            if self.is_categorical:
                raise ValueError(MSG_NO_CODES.format(kind=self.kind))
            if self.undocumented_codes:
                raise ValueError(MSG_CODES_ON_NUMBER.format(kind=self.kind))
            return
        if not self.is_categorical:
            raise ValueError(MSG_CODES_ON_NUMBER.format(kind=self.kind))
        if isinstance(self.codes, str) and self.codes not in lists:
            raise ValueError(MSG_UNKNOWN_LIST.format(known=sorted(lists), name=self.codes))
        keys = [*self.code_table(lists), *self.undocumented_codes]
        numeric = [bool(_INTEGER.fullmatch(k)) for k in keys]
        if any(numeric) and not all(numeric):
            raise ValueError(MSG_MIXED_CODES.format(codes=keys))
        _check_code_spacing(keys)


class Label(_Strict):
    """The outcome column and which of its values is the adverse outcome (the one the model predicts).

    `outcome` is the adverse outcome as a notice and the report phrase it, completing "a 70% chance
    of ...": "missing next month's payment", "being a bad credit risk". Without it they fall back on
    the adverse value's meaning (`pipeline.schema.OUTCOME`), never on another data set's wording.
    """

    column: ColumnName
    text: str = Field(min_length=1)
    adverse: int | str
    values: dict[str, str]  # every label value -> its meaning
    outcome: str = Field(default="", max_length=120)
    aliases: list[ColumnName] = Field(default_factory=list)  # the column's other names in real copies of the data

    @model_validator(mode="after")
    def _adverse_is_a_value(self) -> Label:
        if str(self.adverse) not in self.values:
            raise ValueError(f"expected `adverse` to be one of the label values {list(self.values)}, got {self.adverse!r}")
        if len(self.values) != 2:
            raise ValueError(f"expected exactly two label values (adverse and favourable), got {list(self.values)}")
        _check_code_spacing(list(self.values))
        return self


class PaymentRules(_Strict):
    """How a payment relates to the bill it pays and that month's status (README, "Counterfactuals")."""

    slack_fraction: float = Field(ge=0, lt=1)
    slack_amount: float = Field(ge=0)
    min_share: dict[str, float]  # status code -> share of the bill a payment must cover for that status
    paid_in_full: int  # the status code that says the bill was paid in full
    paid_minimum: int  # the status code that says the minimum was paid


class Group(_Strict):
    """How notices and reports name a feature group (grouped Shapley values use the group's name)."""

    title: str = Field(min_length=1)  # the heading of the group when a notice lists the applicant's data
    reason_subject: str = ""  # how a reason's sentence names a value of the group: "Your bill"


class Source(_Strict):
    """Where the data comes from and whom it is about: printed in notices and reports, never used to find the file.

    Every sentence a notice or the report says about the data is written here, so a lender's own
    data never reads as another data set's (README, "Your own data: the schema file"):
    `subjects` (who the records are about, plural: "card holders", "borrowers"; notices say "past
    card holders"), `records` (what the model learned from: "payment records"), `granted` (what
    everyone in the data had already been granted: "a card", "credit"), `description` (the report's
    provenance sentence: which data, whom, which facts, which outcome), `population` (the people and
    period, for the report's risk table) and `window` (how the records are spread in time, the
    heading of the report's note that no out-of-time test is possible).
    """

    name: str
    citation: str = ""
    licence: str = ""
    subjects: str = Field(default="customers", min_length=1, max_length=60)
    records: str = Field(default="records", min_length=1, max_length=60)
    granted: str = Field(default="credit", min_length=1, max_length=60)
    description: str = Field(default="", max_length=1000)
    population: str = Field(default="", max_length=300)
    window: str = Field(default="", max_length=80)


class Fairness(_Strict):
    """What the fairness audit compares beyond each protected attribute on its own.

    `intersections`: pairs of protected features audited together ("SEX x AGE band");
    `merge_undocumented`: protected categories whose undocumented codes are too rare to judge one
    by one and form one group; `mitigate`: the attribute the post-processing comparison
    (ThresholdOptimizer) equalises; `age`: the applicants' age (Regulation B's elderly rule).
    """

    intersections: list[Annotated[list[ColumnName], Field(min_length=2, max_length=2)]] = Field(default_factory=list)
    merge_undocumented: list[ColumnName] = Field(default_factory=list)
    mitigate: ColumnName | None = None
    age: ColumnName | None = None


class SchemaSpec(_Strict):
    """A whole schema file."""

    format: int
    source: Source
    id_column: ColumnName | None = None
    label: Label
    code_lists: dict[str, dict[str, str]] = Field(default_factory=dict)
    payment_rules: PaymentRules | None = None
    groups: dict[str, Group] = Field(default_factory=dict)
    features: list[FeatureSpec] = Field(min_length=1)
    fairness: Fairness = Field(default_factory=Fairness)

    @model_validator(mode="after")
    def _consistent(self) -> SchemaSpec:
        if self.format != FORMAT_VERSION:
            raise _AtKey(("format",), MSG_FORMAT.format(expected=FORMAT_VERSION, got=self.format))
        seen: dict[str, int] = {}
        by_name = {}
        for i, f in enumerate(self.features):
            at = ("features", i)
            for key, name in (("name", f.name), *(("aliases", a) for a in f.aliases)):
                if name in seen:
                    raise _AtKey((*at, key), MSG_DUPLICATE.format(name=name, first=seen[name]))
                seen[name] = i
            by_name[f.name] = f
            for role, column in (("id", self.id_column), *(("label", c) for c in (self.label.column,
                                                                                   *self.label.aliases))):
                if column in (f.name, *f.aliases):
                    raise _AtKey((*at, "name"), MSG_RESERVED.format(name=f.name, role=role))
            _check_feature(f, self.code_lists, at)
        used = {f.group for f in self.features}
        for name in self.groups:
            if name not in used:
                raise _AtKey(("groups", name), MSG_GROUP.format(groups=sorted(used)))
        for i, f in enumerate(self.features):
            _check_relations(f, by_name, ("features", i), self.payment_rules, self.code_lists)
        _check_fairness(self.fairness, by_name)
        return self

    @property
    def by_name(self) -> dict[str, FeatureSpec]:
        return {f.name: f for f in self.features}

    def codes(self, feature: FeatureSpec) -> dict[Code, str]:
        """Documented codes, typed (whole numbers as int, else text)."""
        return {_code(k): v for k, v in feature.code_table(self.code_lists).items()}

    def undocumented(self, feature: FeatureSpec) -> dict[Code, str]:
        return {_code(k): v for k, v in feature.undocumented_codes.items()}

    @property
    def label_values(self) -> dict[Code, str]:
        return {_code(k): v for k, v in self.label.values.items()}


def _check_fairness(fairness: Fairness, by_name: dict[str, FeatureSpec]) -> None:
    """Every column the [fairness] table names is a protected feature; the age is a banded count."""
    protected = sorted(n for n, f in by_name.items() if f.protected)
    named = [(("intersections", i, k), n) for i, pair in enumerate(fairness.intersections) for k, n in enumerate(pair)]
    named += [(("merge_undocumented", i), n) for i, n in enumerate(fairness.merge_undocumented)]
    named += [((key,), n) for key, n in (("mitigate", fairness.mitigate), ("age", fairness.age)) if n is not None]
    for at, name in named:
        if name not in protected:
            raise _AtKey(("fairness", *at), MSG_NOT_PROTECTED.format(protected=protected, name=name))
    if fairness.age is not None and not (by_name[fairness.age].kind == "count" and by_name[fairness.age].bands):
        raise _AtKey(("fairness", "age"), MSG_AGE_KIND.format(name=fairness.age))


_NESTED: dict[str, type[BaseModel]] = {"features": FeatureSpec, "change": Change, "pays": Pays, "label": Label,
                                       "source": Source, "payment_rules": PaymentRules, "groups": Group,
                                       "bands": Band, "fairness": Fairness}


class _AtKey(ValueError):
    """A rule broken at a key path deeper than the validator that found it."""

    def __init__(self, path: tuple, problem: str) -> None:
        super().__init__(problem)
        self.path, self.problem = path, problem


def _code_order(code: Code) -> tuple[bool, Code]:
    return isinstance(code, str), code


def _code(key: str) -> Code:
    return int(key) if _INTEGER.fullmatch(key) else key


def _check_feature(f: FeatureSpec, lists: dict[str, dict[str, str]], at: tuple) -> None:
    """Rules within one feature: codes for its kind, a range that holds its codes, changes its kind allows."""
    try:
        f._check_codes(lists)
    except ValueError as exc:
        raise _AtKey((*at, "codes"), str(exc)) from None
    table = [*f.code_table(lists), *f.undocumented_codes]
    text_codes = bool(table) and not _INTEGER.fullmatch(table[0])
    if f.kind == "date":
        for key in ("minimum", "maximum"):
            value = getattr(f, key)
            if not isinstance(value, dt.date):
                raise _AtKey((*at, key), MSG_DATE_RANGE.format(value=value))
    elif text_codes:
        if f.minimum is not None or f.maximum is not None:
            raise _AtKey((*at, "minimum"), MSG_TEXT_RANGE)
    elif not f.is_categorical:
        for key in ("minimum", "maximum"):
            if not isinstance(getattr(f, key), int | float):
                raise _AtKey((*at, key), MSG_NUMBER_RANGE.format(kind=f.kind))
    if f.minimum is not None and f.maximum is not None and f.minimum > f.maximum:
        raise _AtKey((*at, "maximum"), MSG_RANGE.format(minimum=f.minimum, maximum=f.maximum))
    if not text_codes and table and f.minimum is not None and f.maximum is not None:
        for code in map(int, table):
            if not f.minimum <= code <= f.maximum:
                raise _AtKey((*at, "codes"), MSG_CODE_OUT_OF_RANGE.format(code=code, minimum=f.minimum,
                                                                          maximum=f.maximum))
    known = {_code(k) for k in table}
    for code in f.unordered_codes:
        if code not in known:
            raise _AtKey((*at, "unordered_codes"), MSG_CODE_UNKNOWN.format(codes=sorted(known, key=_code_order), code=code))
    if f.change.direction != "none" and f.kind not in ("amount", "count"):
        raise _AtKey((*at, "change", "direction"), MSG_DIRECTION_KIND.format(kind=f.kind))
    if f.change.improves_to and f.kind != "status":
        raise _AtKey((*at, "change", "improves_to"), MSG_IMPROVES_KIND.format(kind=f.kind))
    for key, targets in f.change.improves_to.items():
        for code in (key, *targets):
            if _code(str(code)) not in known:
                raise _AtKey((*at, "change", "improves_to", key),
                             MSG_CODE_UNKNOWN.format(codes=sorted(known, key=_code_order), code=code))


def _check_relations(f: FeatureSpec, by_name: dict[str, FeatureSpec], at: tuple,
                     rules: PaymentRules | None, lists: dict[str, dict[str, str]]) -> None:
    """Relations between features: a payment's bill is an amount, its status a status, the rules name its codes."""
    pays = f.change.pays
    if pays is None:
        return
    for key, kind in (("bill", "amount"), ("status", "status")):
        other = by_name.get(getattr(pays, key))
        if other is None or other.kind != kind:
            raise _AtKey((*at, "change", "pays", key), MSG_NOT_FEATURE.format(what=kind, name=getattr(pays, key)))
    if rules is None:
        raise _AtKey((*at, "change", "pays"), MSG_PAYS_RULES)
    status = by_name[pays.status]
    codes = {_code(k) for k in [*status.code_table(lists), *status.undocumented_codes]}
    named = [(("min_share", k), _code(k)) for k in rules.min_share]
    named += [(("paid_in_full",), rules.paid_in_full), (("paid_minimum",), rules.paid_minimum)]
    for path, code in named:
        if code not in codes:
            raise _AtKey(("payment_rules", *path), MSG_RULE_CODE.format(status=status.name, code=code,
                                                                        codes=sorted(codes, key=_code_order)))


def _key_path(loc: tuple, raw: Any) -> str:
    """`features[3] (EDUCATION).change.direction` from a pydantic location, skipping union-member tags."""
    parts: list[str] = []
    node = raw
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
            name = node.get("name") if isinstance(node, dict) else None
            shown = (name if _COLUMN.fullmatch(name) else repr(name)[:40]) if isinstance(name, str) else None
            parts[-1] += f"[{part}]" + (f" ({shown})" if shown else "")  # a hostile name is shown escaped
        elif isinstance(node, dict) and part in node:
            node = node[part]
            parts.append(str(part))
        elif isinstance(node, dict) and isinstance(part, str) and not parts:
            parts.append(part)  # a missing top-level key
        elif isinstance(node, dict) and part not in ("int", "float", "str", "date", "dict[str,str]", "list[int]",
                                                     "function-after[_consistent(), SchemaSpec]"):
            parts.append(str(part))  # a missing key below the top
    return ".".join(parts) or "(top level)"


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys the table at `loc` may hold, for an unknown-key message."""
    model: type[BaseModel] = SchemaSpec
    for part in loc[:-1]:
        model = _NESTED.get(part, model) if isinstance(part, str) else model
    return list(model.model_fields)


def _expected(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown key (a typing mistake?); expected one of the keys {', '.join(_allowed_keys(tuple(error['loc'])))}"
    if error["type"] == "missing":
        return "missing; expected this key (it is required)"
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Input should be ")
    return message


def _messages(exc: ValidationError, raw: dict, file: Path) -> list[str]:
    """One line per key path: every expectation pydantic lists there (union members) joined by "or"."""
    expected: dict[str, list[str]] = {}
    got: dict[str, str] = {}
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _AtKey):
            path, text = _key_path(cause.path, raw), cause.problem
        else:
            path, text = _key_path(tuple(error["loc"]), raw), _expected(error)
            if error["type"] not in ("value_error", "assertion_error", "missing", "extra_forbidden"):
                got[path] = f", got {error['input']!r}"
        texts = expected.setdefault(path, [])
        if text not in texts:
            texts.append(text)
    lines = []
    for path, texts in expected.items():
        problem = " or ".join(texts)
        if path in got:
            problem = ("expected " if not problem.startswith("expected") else "") + problem + got[path]
        lines.append(MSG_KEY.format(file=file, path=path, problem=problem))
    return lines


MAX_SHOWN = 10


def parse_schema(text: str, file: str | Path) -> SchemaSpec:
    """A schema from TOML text; `file` names it in messages."""
    file = Path(file)
    try:
        raw = toml_loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchemaFileError(MSG_NOT_TOML.format(file=file, reason=exc)) from None
    try:
        return SchemaSpec.model_validate(raw)
    except ValidationError as exc:
        lines = _messages(exc, raw, file)
        if len(lines) > MAX_SHOWN:
            lines = [*lines[:MAX_SHOWN], MSG_MORE.format(file=file, count=len(lines) - MAX_SHOWN)]
        raise SchemaFileError("\n".join(lines)) from None


def load_schema(path: str | Path) -> SchemaSpec:
    """Read and check a schema file."""
    return parse_schema(schema_bytes(path).decode("utf-8"), Path(path))


def schema_bytes(path: str | Path) -> bytes:
    """A schema file's exact bytes (UTF-8 text of a regular file within the size cap), read once: a run
    records and copies the very bytes it parsed."""
    file = Path(path)
    try:
        raw = read_regular(file, MAX_SCHEMA_BYTES)  # a fifo or a device: refused, not read
        raw.decode("utf-8")
    except FileNotFoundError:
        raise SchemaFileError(MSG_NOT_A_FILE.format(file=file)) from None
    except NotRegularFile as exc:
        raise SchemaFileError(MSG_NOT_REGULAR.format(file=file, kind=exc.kind)) from None
    except FileTooLarge as exc:
        raise SchemaFileError(MSG_TOO_LARGE.format(file=file, size=exc.size, limit=MAX_SCHEMA_BYTES)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaFileError(MSG_UNREADABLE.format(file=file, reason=exc)) from None
    return raw


def shipped_schema(name: str = DEFAULT_SCHEMA) -> SchemaSpec:
    """A schema shipped with the package (package data: it travels in the wheel)."""
    resource = resources.files("pipeline") / "schemas" / name
    return parse_schema(resource.read_text(encoding="utf-8"), f"pipeline/schemas/{name}")
