"""HTML to PDF with WeasyPrint: one font configuration and parsed stylesheets per process.

Building fontconfig state and parsing the CSS costs more than laying out a
short notice, so a `PdfEngine` keeps them for the life of the process (each
worker of a pool builds its own once), with what notices reuse from one
another: computed styles (`_shared_styles`) and font subsets
(`_font_subsets`). Fonts are found by fontconfig family
name, subset with HarfBuzz by WeasyPrint and embedded; no font file is
fetched, and the fetcher refuses everything outside `templates/`.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from xml.etree import ElementTree

import cssselect2
import tinyhtml5
from markupsafe import Markup
from weasyprint import CSS, HTML, LOGGER, Document
from weasyprint.text.fonts import FontConfiguration

from ._env import ENV, TEMPLATES_DIR, BundledAssetsFetcher
from ._font_subsets import FontSubsets
from ._shared_styles import SharedStyles

BASE_URL = TEMPLATES_DIR.as_uri() + "/"
# WeasyPrint's font configuration is not meant to be shared between threads (the review app
# serves requests from a thread pool): one PDF at a time per process; use processes for speed.
RENDER_LOCK = threading.RLock()
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


if not any(isinstance(f, _SvgPresentationFilter) for f in LOGGER.filters):
    LOGGER.addFilter(_SvgPresentationFilter())


@lru_cache(maxsize=16)
def stylesheet_text(name: str) -> str:
    return (TEMPLATES_DIR / name).read_text(encoding="utf-8")


def inline_css(*names: str) -> Markup:
    """Our own stylesheets, to inline in standalone HTML (trusted files, not data)."""
    return Markup("\n".join(stylesheet_text(n) for n in names))  # noqa: S704


def render_template(template: str, **context: object) -> str:
    return ENV.get_template(template).render(**context)


class _DocumentHTML(HTML):
    """A notice document: parsed as XML when it is well-formed, with our user-agent stylesheet.

    The notice templates are written as well-formed XHTML, so expat (C) parses
    them in a fraction of the time tinyhtml5 (pure Python) takes: about 5% of a
    notice. A value that is not valid XML (a control character in a lender's
    address, say) falls back to the HTML5 parser and is counted in
    `html_fallbacks`. Every value reaches the template autoescaped, so none can
    declare XML entities. WeasyPrint has no public option for either, so this
    sets the attributes its `HTML.__init__` sets and overrides
    `_ua_stylesheets` (WeasyPrint is pinned in requirements.lock; the notice
    tests read every section back from the PDF, so a change there shows up as
    a failure).
    """

    user_agent_css: CSS
    html_fallbacks = 0

    def __init__(self, string: str, base_url: str, url_fetcher: BundledAssetsFetcher) -> None:  # noqa: D107
        try:
            root = ElementTree.fromstring(string)
        except ElementTree.ParseError:
            _DocumentHTML.html_fallbacks += 1
            root = tinyhtml5.parse(string, namespace_html_elements=False)
        self.base_url = base_url
        self.url_fetcher = url_fetcher
        self.media_type = "print"
        self.wrapper_element = cssselect2.ElementWrapper.from_html_root(root, content_language=None)
        self.etree_element = self.wrapper_element.etree_element

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:  # noqa: ARG002, FBT001, FBT002
        return [self.user_agent_css]


class PdfEngine:
    """Process-wide WeasyPrint state: font configuration, fetcher, parsed stylesheets."""

    def __init__(self) -> None:
        self.font_config = FontConfiguration()
        self.fetcher = BundledAssetsFetcher()
        self.styles = SharedStyles()  # computed styles reused across notices (same font configuration)
        self.subsets = FontSubsets()  # and the subset font files they embed
        self._css: dict[str, CSS] = {}

    def css(self, name: str) -> CSS:
        if name not in self._css:
            self._css[name] = CSS(string=stylesheet_text(name), font_config=self.font_config,
                                  url_fetcher=self.fetcher, base_url=BASE_URL)
        return self._css[name]

    def layout(self, html: str, *stylesheets: str, user_agent: str | None = None) -> Document:
        """Parse, style and lay out `html` with our stylesheets.

        `user_agent` names a bundled stylesheet that replaces WeasyPrint's
        HTML5 defaults, for documents rendered thousands of times that use
        few elements (the notices); those also reuse the computed styles of
        the documents laid out before them (`_shared_styles`).
        """
        sheets = [self.css(s) for s in stylesheets]
        if user_agent is None:
            source = HTML(string=html, base_url=BASE_URL, url_fetcher=self.fetcher)
            return source.render(stylesheets=sheets, font_config=self.font_config)
        source = _DocumentHTML(string=html, base_url=BASE_URL, url_fetcher=self.fetcher)
        source.user_agent_css = self.css(user_agent)
        with self.styles.active():
            return source.render(stylesheets=sheets, font_config=self.font_config)

    def write_notice(self, document: Document, **options: object) -> bytes:
        """Write a laid-out notice, reusing the font subsets of the notices written before it."""
        with self.subsets.active():
            return document.write_pdf(**options)

    def pdf(self, html: str, *stylesheets: str, user_agent: str | None = None) -> bytes:
        document = self.layout(html, *stylesheets, user_agent=user_agent)
        return document.write_pdf() if user_agent is None else self.write_notice(document)


_ENGINE: PdfEngine | None = None


def engine() -> PdfEngine:
    """The process's engine, built on first use (once per pool worker)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = PdfEngine()
    return _ENGINE
