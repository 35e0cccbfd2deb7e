"""How hard a notice is to read: its own prose, measured with textstat's Flesch-Kincaid grade.

A notice's own prose is every sentence the lender wrote: headings, the
decision, reasons and why they count, what would have changed the decision,
the logic and the rights. Left out are the parts that are data, not
sentences: the letterhead, the contribution chart's rows, the list of the
applicant's values, the reference table, the sender line and the names and
addresses of contacts and authorities (marked with those classes in the
templates).

textstat 0.7.3 is pinned because it works offline (pyphen's bundled
hyphenation dictionaries; later versions fetch NLTK data at run time). It
imports `pkg_resources`, which setuptools 82 and later no longer ship;
`textstat()` then provides the one function it calls (only for the easy-word
list, which the Flesch-Kincaid grade does not use).
"""

from __future__ import annotations

import importlib.resources
import sys
import types
from html.parser import HTMLParser

NOT_PROSE = frozenset({"letterhead", "chart", "data", "ref", "sender", "authority", "contact"})
SKIPPED_TAGS = frozenset({"style", "title", "head", "table"})
VOID_TAGS = frozenset({"br", "meta", "link", "img", "hr"})
GRADE_MAX = 8.0


def textstat():  # noqa: ANN201 - the textstat module
    """textstat, imported with a stand-in `pkg_resources` that is removed again at once.

    The stand-in stays visible only to textstat (which keeps its own reference): left in
    `sys.modules`, it would mislead every later import of `pkg_resources` in the session
    (pytest's `syspath_prepend` asks it for `fixup_namespace_packages`).
    """
    if "textstat" in sys.modules:
        return sys.modules["textstat"]
    try:
        import pkg_resources  # noqa: F401
        shimmed = False
    except ModuleNotFoundError:
        shim = types.ModuleType("pkg_resources")
        shim.resource_stream = lambda package, name: importlib.resources.files(package).joinpath(name).open("rb")
        sys.modules["pkg_resources"], shimmed = shim, True
    try:
        import textstat as module
    finally:
        if shimmed:
            del sys.modules["pkg_resources"]
    return module


class _Prose(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.skipping: list[bool] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_TAGS:
            return
        classes = set((dict(attrs).get("class") or "").split())
        self.skipping.append(tag in SKIPPED_TAGS or bool(classes & NOT_PROSE))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID_TAGS and self.skipping:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not any(self.skipping):
            self.parts.append(data)


def prose(html: str) -> str:
    """The notice's own sentences, whitespace collapsed (see the module docstring)."""
    parser = _Prose()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def grade(text: str) -> float:
    return float(textstat().flesch_kincaid_grade(text))
