"""Who may write, and from where: start-up token, CSRF double submit, same-origin and Host checks.

- Reads are open, but only on loopback: every request must carry a `Host` of
  127.0.0.1, localhost or [::1] (so a DNS-rebinding page cannot read the queue).
- Writes need the token printed at start-up: in the `X-Review-Token` header
  (API) or the form's token field; a correct form token is then remembered in
  an HttpOnly, SameSite=Strict session cookie holding an HMAC of the token.
- Forms also carry a CSRF token that must equal the `review_csrf` cookie
  (double submit), and a POST whose Origin (or Referer) is not this app is refused.
All secrets are compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

LOOPBACK = ("127.0.0.1", "localhost", "::1")
CSRF_COOKIE = "review_csrf"
AUTH_COOKIE = "review_auth"
TOKEN_HEADER = "X-Review-Token"
MSG_HOST = "this app only answers on 127.0.0.1 / localhost; got Host {host!r}"
MSG_ORIGIN = "refused: the request does not come from this app (origin {origin!r})"
MSG_NO_ORIGIN = "refused: a form post must carry an Origin or Referer header"
MSG_CSRF = "refused: the form's anti-forgery token is missing or does not match; reload the page and try again"
MSG_TOKEN = "a valid review token is required to record a review (it was printed when the app started)"
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
NOTICE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'none'"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


class Guard:
    """The checks of one running app, keyed by its start-up token."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ValueError("the review token must be at least 16 characters")
        self.token = token
        self.session = hmac.new(token.encode(), b"credit-audit review session", hashlib.sha256).hexdigest()

    @staticmethod
    def host_ok(request: Request) -> bool:
        host = urlsplit("//" + request.headers.get("host", "")).hostname or ""
        return host in LOOPBACK

    @staticmethod
    def origin_problem(request: Request, required: bool) -> str | None:
        """None when the POST comes from this app's own pages (or, for API clients, carries no origin)."""
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin or origin == "null":
            return MSG_NO_ORIGIN if required or origin == "null" else None
        parts = urlsplit(origin)
        own = request.headers.get("host", "")
        if parts.scheme != request.url.scheme or parts.netloc != own:
            return MSG_ORIGIN.format(origin=origin)
        return None

    def token_ok(self, given: str | None) -> bool:
        return same(given, self.token)

    def signed_in(self, request: Request) -> bool:
        return same(request.cookies.get(AUTH_COOKIE), self.session)

    @staticmethod
    def csrf_ok(request: Request, form_value: str | None) -> bool:
        return same(request.cookies.get(CSRF_COOKIE), form_value)
