"""The pandera checks of a schema file's columns: what a valid value is, said once.

Both the default UCI loader (`pipeline._loading`) and `credit-audit
check-schema` (`pipeline.schema_check`) validate with `pandera_schema`, so a
range or a code list is never checked two ways. The check's `error` text is
what a rejection message says was expected ("a value from 18 to 120").
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from .schema_file import Code, FeatureSpec, SchemaSpec


def _numeric_codes(codes: dict[Code, str]) -> bool:
    return all(isinstance(c, int) for c in codes)


def _allowed(spec: SchemaSpec, f: FeatureSpec) -> dict[Code, str]:
    return {**spec.codes(f), **spec.undocumented(f)}


def _feature_check(spec: SchemaSpec, f: FeatureSpec) -> pa.Check:
    """The value check of one feature; the wording is what a rejection message says was expected."""
    if f.kind == "date":
        return pa.Check.in_range(pd.Timestamp(f.minimum), pd.Timestamp(f.maximum),
                                 error=f"a date from {f.minimum} to {f.maximum}")
    if f.is_categorical:
        allowed = sorted(_allowed(spec, f), key=lambda c: (isinstance(c, str), c))
        if f.kind == "status" and _numeric_codes(_allowed(spec, f)):
            low = f.minimum if f.minimum is not None else min(allowed)
            high = f.maximum if f.maximum is not None else max(allowed)
            return pa.Check.in_range(low, high, error=f"an integer from {low:g} to {high:g}")
        return pa.Check.isin(allowed, error=f"one of the codes {allowed}")
    return pa.Check.in_range(f.minimum, f.maximum, error=f"a value from {f.minimum:g} to {f.maximum:g}")


def is_text(spec: SchemaSpec, f: FeatureSpec) -> bool:
    return f.is_categorical and not _numeric_codes(_allowed(spec, f))


def label_is_text(spec: SchemaSpec) -> bool:
    return not _numeric_codes(spec.label_values)


def pandera_schema(spec: SchemaSpec, nullable: bool = False) -> pa.DataFrameSchema:
    """The value checks of every feature and the label, built from the schema file.

    Numeric columns are checked as float64 (the loaders convert cells first), text codes as
    text, dates as timestamps. `nullable`: cells the caller already reported as unreadable
    are NaN and not reported twice.
    """
    columns: dict[str, pa.Column] = {}
    for f in spec.features:
        dtype: object = str if is_text(spec, f) else ("datetime64[ns]" if f.kind == "date" else float)
        columns[f.name] = pa.Column(dtype, _feature_check(spec, f), nullable=nullable)
    values = list(spec.label_values)
    label_dtype: object = str if label_is_text(spec) else float
    columns[spec.label.column] = pa.Column(label_dtype, pa.Check.isin(values, error=" or ".join(map(str, values))),
                                           nullable=nullable)
    return pa.DataFrameSchema(columns, strict=False)
