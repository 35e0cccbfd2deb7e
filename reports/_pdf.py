"""HTML to PDF with WeasyPrint: one font configuration and parsed stylesheets per process.

Building fontconfig state and parsing the CSS costs more than laying out a
short notice, so a `PdfEngine` keeps them for the life of the process (each
worker of a pool builds its own once), with what notices reuse from one
another: computed styles (`_shared_styles`) and font subsets
(`_font_subsets`). Building an engine installs the WeasyPrint patches that
make those reuses possible, after checking them (`_weasyprint_patches`);
nothing is patched at import. Fonts are found by fontconfig family name,
subset with HarfBuzz by WeasyPrint and embedded; no font file is fetched, and
the fetcher refuses everything outside `reports/templates/`.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from xml.etree import ElementTree

import cssselect2
import tinyhtml5
from markupsafe import Markup
from weasyprint import CSS, HTML, Document
from weasyprint.text.fonts import FontConfiguration

from . import _weasyprint_patches as patches
from ._env import ENV, TEMPLATES_DIR, BundledAssetsFetcher
from ._font_subsets import FontSubsets
from ._shared_styles import SharedStyles

BASE_URL = TEMPLATES_DIR.as_uri() + "/"
# WeasyPrint's font configuration is not meant to be shared between threads (the review app
# serves requests from a thread pool): one PDF at a time per process; use processes for speed.
RENDER_LOCK = threading.RLock()
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
    `_ua_stylesheets`: the `notice_source` patch, used only while
    `_weasyprint_patches` finds that method as it was written against
    (`PdfEngine.layout` falls back to WeasyPrint's `HTML` otherwise).
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
        patches.count_call(patches.NOTICE_SOURCE)  # WeasyPrint still calls this: the override applies
        return [self.user_agent_css]


class PdfEngine:
    """Process-wide WeasyPrint state: font configuration, fetcher, parsed stylesheets.

    Building one is the start of rendering: it installs the WeasyPrint patches
    that pass their checks (`_weasyprint_patches.install`, idempotent).
    """

    def __init__(self) -> None:
        patches.install()
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

    def _source(self, html: str, user_agent: str | None) -> HTML:
        """The document to lay out: a notice document when the `notice_source` patch applies."""
        if user_agent is None or not patches.is_active(patches.NOTICE_SOURCE):
            return HTML(string=html, base_url=BASE_URL, url_fetcher=self.fetcher)
        source = _DocumentHTML(string=html, base_url=BASE_URL, url_fetcher=self.fetcher)
        source.user_agent_css = self.css(user_agent)
        return source

    def layout(self, html: str, *stylesheets: str, user_agent: str | None = None) -> Document:
        """Parse, style and lay out `html` with our stylesheets.

        `user_agent` names a bundled stylesheet that replaces WeasyPrint's
        HTML5 defaults, for documents rendered thousands of times that use
        few elements (the notices), when the `notice_source` patch is active
        (WeasyPrint's own parser and defaults otherwise: same pages, slower);
        those also reuse the computed styles of the documents laid out before
        them (`_shared_styles`).
        """
        sheets = [self.css(s) for s in stylesheets]
        source = self._source(html, user_agent)
        if user_agent is None:
            return source.render(stylesheets=sheets, font_config=self.font_config)
        with self.styles.active():
            return source.render(stylesheets=sheets, font_config=self.font_config)

    def write_notice(self, document: Document, **options: object) -> bytes:
        """Write a laid-out notice, reusing the font subsets of the notices written before it."""
        with self.subsets.active():
            return document.write_pdf(**options)

    def pdf(self, html: str, *stylesheets: str, user_agent: str | None = None, **options: object) -> bytes:
        """`options` go to WeasyPrint's `write_pdf` (the audit report asks for a tagged PDF/UA-1 there)."""
        document = self.layout(html, *stylesheets, user_agent=user_agent)
        return document.write_pdf(**options) if user_agent is None else self.write_notice(document, **options)


_ENGINE: PdfEngine | None = None


def engine() -> PdfEngine:
    """The process's engine, built on first use (once per pool worker)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = PdfEngine()
    return _ENGINE
