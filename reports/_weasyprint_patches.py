"""Every change the reports make to WeasyPrint's behaviour, checked before it is applied.

Notices are rendered thousands of times from the same templates, stylesheets
and fonts. WeasyPrint has no public option for the three things that make
that fast, so the reports reach into its internals, and only here:

- `shared_styles` wraps `weasyprint.css.StyleFor.set_computed_styles`:
  notices reuse the computed styles of earlier notices (`_shared_styles`),
  about 16% less time per notice in an interleaved A/B;
- `font_subsets` wraps `weasyprint.pdf.fonts.Font.subset`: notices reuse the
  subset font files of earlier notices (`_font_subsets`), about 7% less;
- `notice_source` relies on `weasyprint.HTML._ua_stylesheets`, which the
  notice document (`_pdf._DocumentHTML`) overrides to use a notice-sized
  user-agent stylesheet (matching WeasyPrint's ~250 HTML5 default rules was a
  seventh of a page's layout), and whose `__init__` it replaces to parse the
  well-formed notice templates with expat (tinyhtml5 took ~6 ms a notice,
  about 5%).

The two wrappers consult their store only inside `store.active()`
(`_store`), so every other document (the audit report) is made exactly as
WeasyPrint makes it. Page 1 of all 3,441 declined and 300 approved applicants
of the real data is byte-identical with and without the two stores.

What `install()` guarantees: nothing is changed at import time. `install()`
is called once per `PdfEngine` (`_pdf`), before anything is rendered, and may
be called again (it never wraps a wrapper). It applies a patch only when the
WeasyPrint found is the version the patches were written for (`WRITTEN_FOR`:
a new version may change what a computed style depends on without changing a
single name) and the patched name exists on its class as a plain function
taking exactly the parameters the patch was written against, with the methods
the patch calls beside it. Otherwise it refuses that patch with one warning
naming the patch, the name and the version found, and the renderer takes
WeasyPrint's own path: slower, same bytes. That holds for `notice_source` too,
as the notice stylesheet states the one thing (the footer's vertical-align)
that WeasyPrint's HTML5 defaults and `notice_ua.css` set differently: with all
three patches refused, page 1 of 220 applicants, page 2 and the one-document
notice came out byte-identical. `active_patches()` says which patches apply,
so a run can record it; `calls()` counts how often WeasyPrint called each
patch, which the tests use to prove that a patch is on WeasyPrint's path, not
merely installed. To move to a new WeasyPrint, change the pin and
`WRITTEN_FOR` together and run tests/test_reports.py.

`install()` also adds the SVG warning filter to WeasyPrint's logger (its
public `LOGGER`; not a patch: it changes no output, so it needs no check).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ._font_subsets import subset
from ._shared_styles import set_computed_styles

WRITTEN_FOR = "70.0"  # the WeasyPrint version every patch below was written and tested against

SHARED_STYLES = "shared_styles"
FONT_SUBSETS = "font_subsets"
NOTICE_SOURCE = "notice_source"

MSG_REFUSED = ("WeasyPrint patch {patch!r} refused: {target} {problem} (WeasyPrint {found} found, "
               "patches written for {expected}); rendering takes WeasyPrint's own path there (same PDF, slower)")
MSG_WRONG_VERSION = "was not checked against this version"
MSG_MISSING = "is missing"
MSG_NOT_A_FUNCTION = "is not a plain function (found {kind})"
MSG_PARAMETERS = "takes ({found}), expected ({expected})"
MSG_REQUIRES = "lacks {name}(), which the patch calls"
MSG_ACTIVE = "WeasyPrint %s: patches active: %s"

LOG = logging.getLogger(__name__)
_MARK = "__credit_audit_patch__"  # set on our wrappers, so that a wrapper is never wrapped again


@dataclass(frozen=True)
class Patch:
    """One WeasyPrint method the reports depend on.

    `replacement(original, self, ...)` is installed in its place through a
    counting wrapper; with `replacement=None` nothing is assigned (a subclass
    of ours overrides the method and counts its own calls), the checks alone
    decide whether the renderer may use that subclass.
    """

    name: str
    module: str
    owner: str
    attribute: str
    parameters: tuple[str, ...]
    replacement: Callable[..., Any] | None = None
    requires: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return f"{self.module}.{self.owner}.{self.attribute}"


PATCHES = (
    Patch(SHARED_STYLES, "weasyprint.css", "StyleFor", "set_computed_styles",
          ("self", "element", "parent", "root", "pseudo_type", "base_url", "target_collector"),
          set_computed_styles, requires=("get_cascaded_styles", "get_computed_styles")),
    Patch(FONT_SUBSETS, "weasyprint.pdf.fonts", "Font", "subset", ("self", "to_unicode", "hinting"), subset),
    Patch(NOTICE_SOURCE, "weasyprint", "HTML", "_ua_stylesheets", ("self", "forms"), requires=("render",)),
)

_ACTIVE: set[str] = set()
_REFUSED: dict[str, str] = {}  # patch name -> the warning already logged for it
_CALLS: Counter[str] = Counter()


# ---- checks -----------------------------------------------------------------------------
def weasyprint_version() -> str:
    """The version of the WeasyPrint imported (its own `__version__`)."""
    return str(getattr(importlib.import_module("weasyprint"), "__version__", "unknown"))


def _owner(patch: Patch) -> type | None:
    try:
        owner = getattr(importlib.import_module(patch.module), patch.owner, None)
    except ImportError:
        return None
    return owner if isinstance(owner, type) else None


def _unwrapped(value: Any) -> Any:  # noqa: ANN401 - whatever the class holds under that name
    """WeasyPrint's own function behind one of our wrappers (the value itself otherwise)."""
    return value.__wrapped__ if hasattr(value, _MARK) else value


def _parameter_problem(function: Callable[..., Any], expected: tuple[str, ...]) -> str | None:
    found = tuple(inspect.signature(function, follow_wrapped=False).parameters)
    if found == expected:
        return None
    return MSG_PARAMETERS.format(found=", ".join(found), expected=", ".join(expected))


def problem(patch: Patch, version: str) -> str | None:
    """Why `patch` must not be applied to this WeasyPrint (None when it may)."""
    if version != WRITTEN_FOR:
        return MSG_WRONG_VERSION
    owner = _owner(patch)
    if owner is None:
        return MSG_MISSING
    original = _unwrapped(owner.__dict__.get(patch.attribute))
    if original is None:
        return MSG_MISSING
    if not inspect.isfunction(original):
        return MSG_NOT_A_FUNCTION.format(kind=type(original).__name__)
    missing = [name for name in patch.requires if not callable(getattr(owner, name, None))]
    if missing:
        return MSG_REQUIRES.format(name=missing[0])
    return _parameter_problem(original, patch.parameters)


# ---- applying and removing ----------------------------------------------------------------
def _wrapper(patch: Patch, original: Callable[..., Any]) -> Callable[..., Any]:
    """`patch.replacement` bound to WeasyPrint's `original`, counting its calls."""
    replacement, name = patch.replacement, patch.name
    assert replacement is not None

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        _CALLS[name] += 1
        return replacement(original, *args, **kwargs)

    setattr(wrapper, _MARK, name)
    return wrapper


def _apply(patch: Patch) -> None:
    owner = _owner(patch)
    assert owner is not None
    if patch.replacement is not None:
        original = _unwrapped(owner.__dict__[patch.attribute])
        setattr(owner, patch.attribute, _wrapper(patch, original))
    _ACTIVE.add(patch.name)
    _REFUSED.pop(patch.name, None)


def _remove(patch: Patch) -> None:
    """Put WeasyPrint's own method back where our wrapper is (whatever else is there stays)."""
    owner = _owner(patch)
    current = None if owner is None else owner.__dict__.get(patch.attribute)
    if owner is not None and hasattr(current, _MARK):
        setattr(owner, patch.attribute, current.__wrapped__)
    _ACTIVE.discard(patch.name)


def _refuse(patch: Patch, reason: str, version: str) -> None:
    """Remove `patch` and say why, once per patch and reason."""
    _remove(patch)
    message = MSG_REFUSED.format(patch=patch.name, target=patch.target, problem=reason, found=version,
                                 expected=WRITTEN_FOR)
    if _REFUSED.get(patch.name) != message:
        LOG.warning(message)
        _REFUSED[patch.name] = message


# ---- the API ----------------------------------------------------------------------------
def install() -> tuple[str, ...]:
    """Apply every patch whose checks pass and remove the others; returns the names now active.

    Idempotent: a patch already applied is applied again over WeasyPrint's
    own method, never over its wrapper.
    """
    _install_warning_filter()
    version = weasyprint_version()
    for patch in PATCHES:
        reason = problem(patch, version)
        if reason is None:
            _apply(patch)
        else:
            _refuse(patch, reason, version)
    LOG.debug(MSG_ACTIVE, version, ", ".join(active_patches()) or "none")
    return active_patches()


def uninstall(names: Iterable[str] | None = None) -> None:
    """Put WeasyPrint's own methods back (all, or the patches named); for tests and comparisons."""
    wanted = None if names is None else set(names)
    for patch in PATCHES:
        if wanted is None or patch.name in wanted:
            _remove(patch)
            _REFUSED.pop(patch.name, None)


def pdf_engine_patches() -> tuple[str, ...]:
    """Install the patches (idempotent) and say which apply: what a run records beside its versions."""
    return install()


def active_patches() -> tuple[str, ...]:
    """The patches applied now, in `PATCHES` order."""
    return tuple(p.name for p in PATCHES if p.name in _ACTIVE)


def is_active(name: str) -> bool:
    return name in _ACTIVE


def calls() -> dict[str, int]:
    """How often WeasyPrint has called each patch in this process."""
    return {p.name: _CALLS[p.name] for p in PATCHES}


def count_call(name: str) -> None:
    """Count one call of a patch that a subclass applies (`NOTICE_SOURCE`)."""
    _CALLS[name] += 1


# ---- the SVG warning filter (public logger API, no check needed) --------------------------
# Properties that matplotlib writes in the `style` of inline SVG elements. WeasyPrint's SVG
# renderer applies them, but its HTML style pass also reads every `style` and warns that
# they are not CSS: about 2,000 false warnings per audit report in a run's log.
SVG_PRESENTATION = frozenset({
    "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linejoin",
    "stroke-linecap", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset", "text-anchor", "clip-rule",
})


class _SvgPresentationFilter(logging.Filter):
    """Drops WeasyPrint's 'unknown property' warnings for SVG presentation properties only."""

    def filter(self, record: logging.LogRecord) -> bool:
        ignored = isinstance(record.msg, str) and record.msg.startswith("Ignored `") and bool(record.args)
        if ignored and "unknown property" in str(record.args[-1]):
            return str(record.args[0]).strip() not in SVG_PRESENTATION
        return True


def _install_warning_filter() -> None:
    from weasyprint import LOGGER

    if not any(type(f).__name__ == _SvgPresentationFilter.__name__ for f in LOGGER.filters):
        LOGGER.addFilter(_SvgPresentationFilter())
