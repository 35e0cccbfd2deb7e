"""Font subsets shared between the notices one process writes.

Every notice embeds DejaVu Sans and DejaVu Sans Bold, each subset by
HarfBuzz to the glyphs the notice uses (two subsetting passes per font, with
a copy of the whole font file): about 7% of a notice's time. Most notices use
the same glyphs of a face (300 notices of the real data used 5 distinct sets
of the regular face), so `FontSubsets` keeps the subset font file made for
each (font file, glyph set) and hands it back to the next notice that needs
the same one.

Why this is sound: WeasyPrint's `Font.subset` sets `file_content` from the
font file, the glyph ids, the hinting option and whether a glyph was missing
(an outlined .notdef), and nothing else; all of these are in the key. The
font file is named by family, weight, style, face index and length: fontconfig
gives one file per face. The tests write notices with and without the store
and compare the uncompressed PDFs byte for byte.

`subset` below takes the place of `Font.subset` once
`_weasyprint_patches.install()` has checked that WeasyPrint's method is the
one it was written against; it consults a store only inside `store.active()`
(`_store`).
"""

from __future__ import annotations

from collections.abc import Hashable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from ._store import BoundedStore

if TYPE_CHECKING:  # a WeasyPrint internal: named for the type checker only, so that importing never fails
    from collections.abc import Callable

    from weasyprint.pdf.fonts import Font


class FontSubsets(BoundedStore):
    """Subset font files by (font file, hinting, missing glyphs, glyph ids): at most `limit`, ~35 KiB each."""

    _active: ClassVar[ContextVar[FontSubsets | None]] = ContextVar("credit_audit_font_subsets", default=None)

    def __init__(self, limit: int = 256) -> None:
        super().__init__(limit)


def _subset_key(font: Font, to_unicode: dict[int, str], hinting: bool) -> Hashable:  # noqa: FBT001
    return (font.family, font.weight, font.style, font.index, len(font.file_content), bool(hinting),
            bool(font.missing), frozenset(to_unicode))


def subset(original: Callable[..., Any], self: Font, to_unicode: dict[int, str], hinting: bool) -> Any:  # noqa: ANN401, FBT001
    """WeasyPrint's `original` `Font.subset`, taking the subset font file from the active store when it holds it."""
    store = FontSubsets.current()
    if store is None or not to_unicode:
        return original(self, to_unicode, hinting)
    key = _subset_key(self, to_unicode, hinting)
    content = store.get(key)
    if content is None:
        result = original(self, to_unicode, hinting)
        store.put(key, self.file_content)
        return result
    self.file_content = content
    return None

