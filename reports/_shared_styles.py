"""Computed styles shared between the documents one process renders (the notices).

WeasyPrint computes an element's style lazily, one property at a time
(`ComputedStyle.__missing__`), and shares one computed style between the
equivalent elements of a document: same parent style, same matched rules. A
notice run lays out thousands of documents built from the same templates and
the same parsed stylesheets, so every notice repeats the same computations:
about a sixth of the time to render one. `SharedStyles` carries WeasyPrint's
sharing across documents: an element whose parent style is the same object,
and whose cascaded declarations and pseudo-element type are equal to those of
an element rendered earlier, is given that element's computed style.

Why this is sound: a computed style is a function of its parent style, its
cascaded declarations, the pseudo-element type, the base URL and the font
configuration (one per `PdfEngine`, which owns the store). It holds no
reference to its element: `attr()`, `string()` and counters are resolved when
boxes are built or pages laid out, from the element and the page. WeasyPrint's
own sharing within a document rests on the same property. The tests render
notices with and without the store and compare the uncompressed PDFs byte for
byte.

`set_computed_styles` below takes the place of `StyleFor.set_computed_styles`
once `_weasyprint_patches.install()` has checked that WeasyPrint's method is
the one it was written against; it consults a store only inside
`store.active()` (`_store`), so every other document (the audit report) is
styled exactly as before.
"""

from __future__ import annotations

from collections.abc import Hashable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from ._store import BoundedStore

if TYPE_CHECKING:  # WeasyPrint internals: named for the type checker only, so that importing never fails
    from collections.abc import Callable

    from weasyprint.css import ComputedStyle, StyleFor


def _hashable(value: Any) -> Hashable:  # noqa: ANN401 - any parsed CSS value
    """`value` with its lists made tuples (tagged, so a list never equals a tuple); raises TypeError if not enough."""
    if isinstance(value, list):
        return ("[list]", *(_hashable(item) for item in value))
    if type(value) is tuple:
        return tuple(_hashable(item) for item in value)
    hash(value)
    return value


def _declarations_key(cascaded: dict[str, Any]) -> Hashable | None:
    """The cascaded declarations as a dict key (None when a value cannot be hashed)."""
    items = tuple(cascaded.items())
    try:
        hash(items)
    except TypeError:  # list values (backgrounds, `content`): rare, so only then the deep copy
        try:
            return _hashable(items)
        except TypeError:
            return None
    return items


class SharedStyles(BoundedStore):
    """Computed styles of earlier documents, keyed by parent style, pseudo-element, base URL and declarations.

    Bounded (`BoundedStore`): elements with a unique inline style, the chart
    bars, add entries; on the real data they level off near 900, as bar
    widths are rounded to a tenth of a percent.
    """

    _active: ClassVar[ContextVar[SharedStyles | None]] = ContextVar("credit_audit_shared_styles", default=None)

    def __init__(self, limit: int = 2048) -> None:
        super().__init__(limit)

    def lookup(self, key: Hashable, parent: ComputedStyle | None) -> ComputedStyle | None:
        """The style stored under `key` if it was computed under this very parent style."""
        entry = self.get(key, accept=lambda stored: stored[0] is parent)
        return None if entry is None else entry[1]

    def add(self, key: Hashable, parent: ComputedStyle | None, style: ComputedStyle) -> None:
        self.put(key, (parent, style))


def _style_key(self: StyleFor, element: Any, parent_style: ComputedStyle | None, pseudo_type: str | None,  # noqa: ANN401
               base_url: str | None) -> Hashable | None:
    """What a computed style depends on, as a key (None when the declarations cannot be hashed).

    The parent goes in by identity; `SharedStyles.lookup` checks it again, as
    an id is only unique while its object lives.
    """
    declarations = _declarations_key(self.get_cascaded_styles().get((element, pseudo_type), {}))
    return None if declarations is None else (id(parent_style), pseudo_type, base_url, declarations)


def set_computed_styles(original: Callable[..., None], self: StyleFor, element: Any, parent: Any,  # noqa: ANN401
                        root: Any = None, pseudo_type: str | None = None, base_url: str | None = None,  # noqa: ANN401
                        target_collector: Any = None) -> None:  # noqa: ANN401
    """WeasyPrint's `original` `StyleFor.set_computed_styles`, reusing an equal style from the active store."""
    shared = SharedStyles.current()
    computed = self.get_computed_styles()
    parent_style = None if parent is None else computed[parent, None]
    key = None if shared is None else _style_key(self, element, parent_style, pseudo_type, base_url)
    style = None if key is None else shared.lookup(key, parent_style)
    if style is not None:
        computed[element, pseudo_type] = style
        if target_collector and style["anchor"]:  # as WeasyPrint does for a style it computes
            target_collector.collect_anchor(style["anchor"])
        return
    original(self, element, parent, root=root, pseudo_type=pseudo_type, base_url=base_url,
             target_collector=target_collector)
    if key is not None:
        shared.add(key, parent_style, computed[element, pseudo_type])

