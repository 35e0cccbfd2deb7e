"""The one Jinja2 environment and the one URL fetcher every report uses.

Templates hold no logic (ydata-profiling style): the view builders hand them
finished strings, and the filters here only format numbers. Autoescape is on,
so a value such as `<img src="file:///etc/passwd">` in any field is written as
text. StrictUndefined makes a missing view key an error, not a blank line.

WeasyPrint fetches nothing but the project's own files under `reports/templates/`:
the fetcher refuses every other URL (files elsewhere, http, data:), so even
markup that slipped past the escaping could not read a local file or call out.
Fonts come from fontconfig by family name (DejaVu, a Debian system font), so
no font file is fetched either.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlparse

import jinja2
from weasyprint import URLFetcher

# Package data, found through the installed package (a wheel installs it as a folder, so this is
# a real path that Jinja2's loader and WeasyPrint's file:// base URL can use).
TEMPLATES_DIR = Path(resources.files(__package__).joinpath("templates"))
MSG_FETCH_REFUSED = "reports fetch only the project's own files under {root}; refused {url!r}"
NOT_COMPUTED = "not computed in this run"
DASH = "\u2013"


class BundledAssetsFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves files under `root` and refuses everything else.

    `refused` lists every URL it turned down, so tests (and the curious) can
    see that nothing outside the bundle was requested.
    """

    def __init__(self, root: Path = TEMPLATES_DIR) -> None:
        super().__init__(allowed_protocols=("file",), allow_redirects=False, timeout=1)
        self.root = Path(root).resolve()
        self.refused: list[str] = []
        self.served: list[str] = []

    def _path(self, url: str) -> Path | None:
        parsed = urlparse(url)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parsed.path)).resolve()
        return path if path.is_relative_to(self.root) and path.is_file() else None

    def fetch(self, url, headers=None):  # noqa: ANN001 - WeasyPrint's signature
        path = self._path(url)
        if path is None:
            self.refused.append(url)
            raise ValueError(MSG_FETCH_REFUSED.format(root=self.root, url=url))
        self.served.append(url)
        return super().fetch(path.as_uri(), headers)


# ---- formatting filters (numbers in, display strings out) ---------------------
def pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value * 100:.{digits}f}%"


MAX_PCT_DIGITS = 6


def distinct_pcts(values: dict[str, float | None], digits: int = 1) -> dict[str, str]:
    """Each value as a percentage, with the fewest decimals (at least `digits`) that print different values differently.

    A notice prints the applicant's probability, the threshold and the
    counterfactual's probability side by side: 49.96% and 50.0% must not both
    read "50.0%". Equal values print equally; missing ones as a dash.
    """
    known = sorted({float(v) for v in values.values() if v is not None and not math.isnan(v)})
    d = digits
    while d < MAX_PCT_DIGITS and len({pct(v, d) for v in known}) < len(known):
        d += 1
    return {k: pct(v, d) for k, v in values.items()}


def num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def points(value: float | None) -> str:
    """A change in probability, in percentage points with its sign."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value * 100:+.1f} pts"


def short_hash(value: str | None, n: int = 12) -> str:
    return DASH if not value else str(value)[:n]


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, num=num, points=points, short_hash=short_hash)
    env.globals.update(NOT_COMPUTED=NOT_COMPUTED)
    return env


ENV = make_environment()
