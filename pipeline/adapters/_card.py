"""The model card: a TOML file beside the lender's model that says what the model is and how to read it.

A model file alone does not say which columns it reads in which order, which
output column is the adverse outcome, or where the lender declines; guessing
any of them would audit a different model than the one in production. The
card says it once, beside the model (`german_xgb.json` -> `german_xgb.card.toml`),
and every key is checked like the schema file's: an unknown key, a wrong type
or a missing one is refused with the card file and the key path.

    format = 1
    [model]
    type = "xgboost"            # onnx, torchscript, skops, xgboost, lightgbm, credit-audit-mlp
    name = "German credit XGBoost"
    sha256 = "..."              # optional: the model file must hash to it
    [inputs]
    columns = ["duration_in_month", ...]   # schema feature names, in the order the model reads them
    [output]
    adverse_column = 1          # for a 2-column output: the column holding P(adverse)
    [policy]
    threshold = 0.5             # P(adverse) at or above it declines
    description = "..."
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._io import FileTooLarge, NotRegularFile, read_regular
from .._toml import loads as toml_loads
from ._errors import MSG_NOT_REGULAR, ModelCardError

FORMAT_VERSION = 1
CARD_SUFFIX = ".card.toml"
MAX_CARD_BYTES = 100_000  # a card is a few hundred bytes; a larger file is refused unread
ModelType = Literal["onnx", "torchscript", "skops", "xgboost", "lightgbm", "credit-audit-mlp"]
MODEL_TYPES: tuple[str, ...] = ModelType.__args__  # type: ignore[attr-defined]

MSG_NO_CARD = ("{model}: no model card; expected {card} beside the model (a TOML file that says the model's type, "
               "input columns and decision threshold; README, \"Your own data and model\"; docs/model-card.md)")
MSG_CARD_UNREADABLE = "{card}: cannot read the model card ({reason})"
MSG_CARD_TOO_LARGE = "{card}: the model card is {size:,} bytes; expected at most {limit:,}"
MSG_CARD_NOT_TOML = "{card}: not a valid TOML file ({reason})"
MSG_CARD_KEY = "{card}: {path}: {problem}"
MSG_CARD_FORMAT = "expected format = {expected}, the only card version this credit-audit reads, got {got!r}"
MSG_DUPLICATE_COLUMN = "expected each column once, got {column!r} twice"
MSG_SHA = "expected 64 hexadecimal digits (the SHA-256 of the model file)"


def _sha256(text: str) -> str:
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(MSG_SHA)
    return text.lower()


def _unique(columns: list[str]) -> list[str]:
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise ValueError(MSG_DUPLICATE_COLUMN.format(column=column))
        seen.add(column)
    return columns


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class ModelSection(_Strict):
    type: ModelType
    name: str = Field(min_length=1, max_length=200)
    sha256: Annotated[str, AfterValidator(_sha256)] | None = None


class InputsSection(_Strict):
    columns: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], AfterValidator(_unique)] = Field(
        min_length=1, max_length=10_000)


class OutputSection(_Strict):
    adverse_column: Annotated[int, Field(ge=0, le=1)] | None = None  # strict int: `true` is not column 1


class PolicySection(_Strict):
    threshold: float = Field(gt=0, le=1)  # 0 would decline everyone, whatever the model says
    description: str = Field(default="", max_length=2000)


class ModelCard(_Strict):
    """A whole card, checked."""

    format: int
    model: ModelSection
    inputs: InputsSection
    output: OutputSection = Field(default_factory=OutputSection)
    policy: PolicySection

    @model_validator(mode="after")
    def _known_format(self) -> ModelCard:
        if self.format != FORMAT_VERSION:
            raise ValueError(MSG_CARD_FORMAT.format(expected=FORMAT_VERSION, got=self.format))
        return self


_SECTIONS: dict[str, type[BaseModel]] = {"model": ModelSection, "inputs": InputsSection, "output": OutputSection,
                                         "policy": PolicySection}


@dataclass(frozen=True)
class CardFile:
    """A card as read: the checked content, where it lies and its exact bytes (hashed into the model's identity)."""

    card: ModelCard
    path: Path
    data: bytes


def card_path(model_path: str | Path) -> Path:
    """`<stem>.card.toml` beside the model: `german_xgb.json` -> `german_xgb.card.toml`, a folder `mlp/` -> `mlp.card.toml`."""
    model_path = Path(model_path)
    stem = model_path.name if model_path.is_dir() else model_path.stem
    return model_path.with_name(stem + CARD_SUFFIX)


def read_card(model_path: str | Path) -> CardFile:
    """The card beside `model_path`, checked key by key (ModelCardError naming the card and key path)."""
    model_path = Path(model_path)
    path = card_path(model_path)
    if not (path.exists() or path.is_symlink()):
        raise ModelCardError(MSG_NO_CARD.format(model=model_path, card=path))
    try:
        data = read_regular(path, MAX_CARD_BYTES)
        text = data.decode("utf-8")
    except NotRegularFile as exc:
        raise ModelCardError(MSG_NOT_REGULAR.format(file=path, what="model card", kind=exc.kind)) from None
    except FileTooLarge as exc:
        raise ModelCardError(MSG_CARD_TOO_LARGE.format(card=path, size=exc.size, limit=MAX_CARD_BYTES)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelCardError(MSG_CARD_UNREADABLE.format(card=path, reason=exc)) from None
    return CardFile(parse_card(text, path), path, data)


def parse_card(text: str, path: str | Path) -> ModelCard:
    """A card from TOML text; `path` names it in messages."""
    try:
        raw = toml_loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelCardError(MSG_CARD_NOT_TOML.format(card=path, reason=exc)) from None
    try:
        return ModelCard.model_validate(raw)
    except ValidationError as exc:
        raise ModelCardError("\n".join(_problems(exc, path))) from None


def _problems(exc: ValidationError, path: str | Path) -> list[str]:
    """One line per problem: the card, the key path (`policy.threshold`, `inputs.columns[3]`), what was expected."""
    lines = []
    for error in exc.errors():
        loc = [p for p in error["loc"] if not (isinstance(p, str) and ("[" in p or p in ("str", "float", "int")))]
        key = ""
        for part in loc:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        lines.append(MSG_CARD_KEY.format(card=path, path=key or "(top level)", problem=_expected(error)))
    return lines


def _expected(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        loc = error["loc"]
        section = _SECTIONS.get(str(loc[0])) if len(loc) > 1 else ModelCard
        allowed = ", ".join(section.model_fields) if section else ""
        return f"unknown key (a typing mistake?); expected one of the keys {allowed}"
    if kind == "missing":
        return "missing; expected this key (it is required)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("value_error", "assertion_error"):
        return message
    return f"expected {message.removeprefix('Input should be ')}, got {error['input']!r}"
