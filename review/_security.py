"""Where requests may come from: Host and same-origin checks, CSRF double submit, response headers.

- Every request must carry a `Host` of 127.0.0.1, localhost or [::1] (so a
  DNS-rebinding page cannot reach the app), or the host of the public URL the
  bank's reverse proxy serves it under (`--public-url`, SSO mode).
- Forms carry a CSRF token that must equal the `review_csrf` cookie (double
  submit), the sign-in form included, and a POST whose Origin (or Referer) is
  neither this app nor its public URL is refused.
- Who is asking is _auth.py's business; these checks come first.
All secrets are compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request

LOOPBACK = ("127.0.0.1", "localhost", "::1")
CSRF_COOKIE = "review_csrf"
MSG_HOST = "this app only answers on 127.0.0.1 / localhost (or its --public-url); got Host {host!r}"
MSG_ORIGIN = "refused: the request does not come from this app (origin {origin!r})"
MSG_NO_ORIGIN = "refused: a form post must carry an Origin or Referer header"
MSG_CSRF = "refused: the form's anti-forgery token is missing or does not match; reload the page and try again"
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
NOTICE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'none'"


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


class Guard:
    """The Host, origin and CSRF checks of one running app (`public_url`: the proxy's address, SSO mode)."""

    def __init__(self, public_url: str | None = None) -> None:
        parts = urlsplit(public_url) if public_url else None
        self.public_origin = f"{parts.scheme}://{parts.netloc}" if parts and parts.netloc else None
        self.public_host = parts.hostname if parts and parts.netloc else None

    def host_ok(self, request: Request) -> bool:
        host = urlsplit("//" + request.headers.get("host", "")).hostname or ""
        return host in LOOPBACK or (self.public_host is not None and host == self.public_host)

    def origin_problem(self, request: Request, required: bool) -> str | None:
        """None when the POST comes from this app's own pages (or, for API clients, carries no origin)."""
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin or origin == "null":
            return MSG_NO_ORIGIN if required or origin == "null" else None
        parts = urlsplit(origin)
        own = request.headers.get("host", "")
        if parts.scheme == request.url.scheme and parts.netloc == own:
            return None
        if self.public_origin is not None and f"{parts.scheme}://{parts.netloc}" == self.public_origin:
            return None
        return MSG_ORIGIN.format(origin=origin)

    @staticmethod
    def csrf_ok(request: Request, form_value: str | None) -> bool:
        return same(request.cookies.get(CSRF_COOKIE), form_value)

    def check_form(self, request: Request, csrf_token: str) -> None:
        """Same origin and a matching CSRF token, for every form post (sign-in, reviews, claims): else 403."""
        problem = self.origin_problem(request, required=True)
        if problem:
            raise HTTPException(403, problem)
        if not self.csrf_ok(request, csrf_token):
            raise HTTPException(403, MSG_CSRF)
