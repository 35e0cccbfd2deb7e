"""A starting schema file guessed from a data file, for a person to finish (`credit-audit init-schema`).

Everything guessed is marked `# TODO` so nothing guessed passes for declared:
kinds come from the column's type and number of distinct values, ranges and
codes from the values present (a range should be widened to what is valid,
not what happened to occur), and a code's meaning is left for the person who
knows it. Two things are never guessed silently: no column is marked
protected (the columns whose names suggest a protected attribute are listed
in a comment for the person to decide), and nobody can change any value
(which changes a person can really make is a decision, not a statistic).

The written file parses as it is and passes `credit-audit check-schema` on
the file it came from, so the person can edit it one step at a time.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._loading import _check_line_lengths, _read_text
from .schema_file import FORMAT_VERSION

# At most this many distinct whole numbers make a column a guessed category (PAY_x: 11; counts have more).
MAX_CATEGORY_CODES = 12
# Text columns with more distinct values than this are listed but flagged: free text is not a category.
MAX_TEXT_CODES = 50
LABEL_NAMES = re.compile(r"default|label|target|^y$|outcome|creditability|^class$|^bad$|risk", re.IGNORECASE)
ID_NAMES = re.compile(r"^(id|applicant_?id|customer_?id|client_?id)$", re.IGNORECASE)
PROTECTED_HINTS = re.compile(
    r"sex|gender|age|birth|marri|marital|personal_status|race|ethnic|relig|nation|foreign|citizen|disab|pregnan",
    re.IGNORECASE,
)
MSG_NOT_CSV = "{file}: not readable as CSV ({reason})"
MSG_NO_ROWS = "{file}: the file has a header but no rows; a schema is inferred from the values"


def _q(text: object) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(str(text), ensure_ascii=False)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def _label_column(frame: pd.DataFrame, id_column: str | None) -> str | None:
    binary = [c for c in frame.columns if c != id_column and frame[c].nunique(dropna=True) == 2]
    named = [c for c in binary if LABEL_NAMES.search(str(c))]
    return (named or binary or [None])[-1]


def _id_column(frame: pd.DataFrame) -> str | None:
    for c in frame.columns:
        if ID_NAMES.match(str(c).strip()) and frame[c].is_unique:
            return str(c)
    return None


def _whole(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and bool(np.all(np.mod(column.dropna().to_numpy(float), 1) == 0))


def _is_date(column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column):
        return False
    parsed = pd.to_datetime(column.astype(str).str.strip(), format="%Y-%m-%d", errors="coerce")
    return bool(parsed.notna().all())


def _feature(name: str, column: pd.Series) -> list[str]:
    """The lines of one [[features]] entry, every guess marked."""
    label = name.replace("_", " ").replace(".", " ").strip().capitalize()
    out = ["[[features]]", f"name = {_q(name)}", f"label = {_q(label)}  # TODO: the words a notice prints"]
    values = column.dropna()
    blanks = int(column.isna().sum())
    if blanks:
        out.insert(1, f"# TODO: {blanks} blank cell(s); every cell needs a value (check-schema reports them)")
    if _is_date(column):
        parsed = pd.to_datetime(values.astype(str).str.strip(), format="%Y-%m-%d")
        out += ['kind = "date"  # TODO: check (values are dates)', f"group = {_q(name)}  # TODO: group features",
                f"minimum = {parsed.min().date().isoformat()}  # TODO: the earliest valid date (this: the data's)",
                f"maximum = {parsed.max().date().isoformat()}  # TODO: the latest valid date (this: the data's)"]
        return out
    distinct = sorted(values.unique(), key=lambda v: (str(type(v)), v))
    if pd.api.types.is_numeric_dtype(column):
        whole = _whole(column)
        if whole and len(distinct) <= MAX_CATEGORY_CODES:
            kind = "category"
            why = f"{len(distinct)} distinct whole numbers; a count or an ordered status instead?"
        elif whole and values.min() >= 0 and values.max() <= 1000:
            kind, why = "count", "whole numbers from 0 to 1000"
        else:
            kind, why = "amount", "numbers"
        out += [f'kind = "{kind}"  # TODO: check ({why})', f"group = {_q(name)}  # TODO: group features"]
        if kind != "category":
            out.append('unit = ""  # TODO: the unit or currency, e.g. "EUR", "months"')
        out += [f"minimum = {_number(values.min())}  # TODO: the smallest valid value (this: the data's)",
                f"maximum = {_number(values.max())}  # TODO: the largest valid value (this: the data's)"]
        if kind == "category":
            out.append("[features.codes]  # TODO: the meaning of each code; move codes nobody documented to"
                       " undocumented_codes")
            out += [f"{_q(_number(v))} = {_q(f'code {_number(v)}')}" for v in distinct]
        return out
    texts = sorted({str(v).strip() for v in distinct})
    flag = f"; {len(texts)} distinct values: is this free text?" if len(texts) > MAX_TEXT_CODES else ""
    out += [f'kind = "category"  # TODO: check (text values{flag})', f"group = {_q(name)}  # TODO: group features",
            "[features.codes]  # TODO: the meaning of each code"]
    out += [f"{_q(t)} = {_q(t)}" for t in texts]
    return out


def infer_schema(path: str | Path) -> str:
    """The text of a starting schema file for the CSV at `path`."""
    file = Path(path)
    text = _read_text(file)  # the loader's guards first: encoding, then line and cell caps
    _check_line_lengths(text, file)
    try:
        frame = pd.read_csv(io.StringIO(text), skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(MSG_NOT_CSV.format(file=file, reason=str(exc).strip())) from None
    if frame.empty:
        raise ValueError(MSG_NO_ROWS.format(file=file))
    id_column = _id_column(frame)
    label = _label_column(frame, id_column)
    features = [str(c) for c in frame.columns if c not in (id_column, label)]
    hints = [c for c in features if PROTECTED_HINTS.search(c)]
    lines = [
        f"# A starting schema inferred from {_q(file.name)} by `credit-audit init-schema`: edit every TODO, then",
        "# check it with `credit-audit check-schema --schema THIS_FILE --data DATA_FILE`.",
        "# Format: README, \"Your own data: the schema file\".",
        "#",
        "# Protected attributes are never guessed: no feature below says protected = true. Columns whose",
        "# names suggest one (decide for each, and for any other, then add `protected = true`):",
        *([f"#   {_q(c)}" for c in hints] or ["#   (none by name: look at every column)"]),
        "# Nobody can change any value below: add a [features.change] table where a person really can.",
        f"format = {FORMAT_VERSION}",
    ]
    if id_column:
        lines.append(f"id_column = {_q(id_column)}  # TODO: check (unique values, named like an id)")
    else:
        lines.append("# no id column found (rows will be numbered); TODO: add id_column = \"...\" if there is one")
    lines += ["", "[source]", f"name = {_q(file.name)}  # TODO: where the data comes from",
              "# TODO: how notices and the report speak of the data (README, \"Your own data: the schema file\"):",
              '# subjects = "borrowers"  records = "credit records"  granted = "credit"  window = "..."',
              '# description = "..."  population = "..."', ""]
    lines += ["[label]"]
    if label is None:
        lines += ['column = "TODO"  # TODO: no column has two values; name the outcome column',
                  'text = "TODO"', 'adverse = "TODO"', 'values = { "TODO" = "adverse", "TODO2" = "favourable" }']
    else:
        values = sorted(frame[label].dropna().unique(), key=str)
        keys = [_number(v) if pd.api.types.is_numeric_dtype(frame[label]) else str(v).strip() for v in values]
        adverse = keys[-1]
        lines += [f"column = {_q(label)}  # TODO: check (a column with two values)",
                  'text = "TODO: what the adverse outcome means, e.g. Defaulted within 12 months"',
                  (f"adverse = {adverse if _INT.fullmatch(adverse) else _q(adverse)}"
                   "  # TODO: the value that means the adverse outcome (this: a guess)"),
                  "values = { " + ", ".join(f"{_q(k)} = {_q(k)}" for k in keys) + " }  # TODO: each value's meaning",
                  "# TODO: the adverse outcome as a notice says it (\"a 70% chance of ...\"), e.g."
                  " outcome = \"being a bad credit risk\""]
    for name in features:
        lines += ["", *_feature(name, frame[name])]
    return "\n".join(lines) + "\n"


_INT = re.compile(r"-?[0-9]+")
