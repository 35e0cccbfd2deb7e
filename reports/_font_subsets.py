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

`Font.subset` is wrapped once; the wrapper consults a store only inside
`store.active()` (`_store`). WeasyPrint is pinned in requirements.lock.
"""

from __future__ import annotations

from collections.abc import Hashable
from contextvars import ContextVar
from typing import Any, ClassVar

from weasyprint.pdf.fonts import Font

from ._store import BoundedStore

# WeasyPrint's own method, also when this module is imported again (the wrapper keeps it in __wrapped__)
_ORIGINAL = getattr(Font.subset, "__wrapped__", Font.subset)


class FontSubsets(BoundedStore):
    """Subset font files by (font file, hinting, missing glyphs, glyph ids): at most `limit`, ~35 KiB each."""

    _active: ClassVar[ContextVar[FontSubsets | None]] = ContextVar("credit_audit_font_subsets", default=None)

    def __init__(self, limit: int = 256) -> None:
        super().__init__(limit)


def _subset_key(font: Font, to_unicode: dict[int, str], hinting: bool) -> Hashable:  # noqa: FBT001
    return (font.family, font.weight, font.style, font.index, len(font.file_content), bool(hinting),
            bool(font.missing), frozenset(to_unicode))


def _subset(self: Font, to_unicode: dict[int, str], hinting: bool) -> Any:  # noqa: ANN401, FBT001
    """`Font.subset`, taking the subset font file from the active store when it holds this one."""
    store = FontSubsets.current()
    if store is None or not to_unicode:
        return _ORIGINAL(self, to_unicode, hinting)
    key = _subset_key(self, to_unicode, hinting)
    content = store.get(key)
    if content is None:
        result = _ORIGINAL(self, to_unicode, hinting)
        store.put(key, self.file_content)
        return result
    self.file_content = content
    return None


_subset.__wrapped__ = _ORIGINAL  # type: ignore[attr-defined]
Font.subset = _subset
