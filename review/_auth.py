"""Who is asking: the signed-in account of a request, as one FastAPI dependency (`current_user`).

A request is identified, in this order, by:

1. **single sign-on**, when the app runs behind the bank's reverse proxy
   (`--trusted-proxy ADDRESS`): the proxy authenticates the person and sends
   their account name in `X-Remote-User`; the app believes that header only
   on a connection *from* a trusted proxy address, and the name must be an
   enabled account here (its role comes from the account, never from a
   header). The same header on a connection from any other address is
   refused with 403: someone is trying to pass as someone else.
2. **HTTP Basic** with an account's name and password (for scripts using
   the JSON API; each request is checked like a sign-in, rate limit included);
3. **the session cookie** set by the sign-in page (`/login`).

Nothing else is an identity: there is no typed reviewer name and no shared
token. Routes declare what they need with `Depends(current_user)`,
`Depends(proposer)` or `Depends(approver)`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

from ._accounts import Account, AccountError, AccountStore, LockedOut

SESSION_COOKIE = "review_session"
USER_HEADER = "X-Remote-User"
MSG_UNTRUSTED_HEADER = (
    "refused: an identity header ({header}) is only accepted from the configured reverse proxy, not from {address}"
)
MSG_SSO_UNKNOWN = "refused: the reverse proxy names {name!r}, which is not an enabled account here (credit-audit users)"
MSG_LOGIN = "sign in first"
MSG_ROLE = "your role ({role}) cannot {action}"
MSG_BAD_PROXY = "--trusted-proxy must be an IP address or network, got {got!r}"


class LoginRequired(Exception):
    """No identity: pages redirect to the sign-in page, the API answers 401."""


def parse_proxies(values: list[str] | tuple[str, ...] | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for v in values or ():
        try:
            nets.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise ValueError(MSG_BAD_PROXY.format(got=v)) from None
    return tuple(nets)


@dataclass(frozen=True)
class Auth:
    """The app's account store and its single sign-on setting."""

    accounts: AccountStore
    trusted_proxies: tuple = field(default=())  # ip networks; empty: SSO mode is off

    def from_trusted_proxy(self, request: Request) -> bool:
        host = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted_proxies)

    def client_address(self, request: Request) -> str:
        """The person's address for the rate limit: the proxy's X-Forwarded-For last hop when behind a trusted one."""
        if self.from_trusted_proxy(request):
            forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
            if forwarded:
                return forwarded[:64]
        return request.client.host if request.client else "unknown"

    def identify(self, request: Request) -> Account | None:
        """The request's account, None when it carries no identity; HTTPException 403 / 401 for a bad one."""
        asserted = request.headers.get(USER_HEADER)
        if asserted is not None:
            if not self.from_trusted_proxy(request):
                address = request.client.host if request.client else "unknown"
                raise HTTPException(403, MSG_UNTRUSTED_HEADER.format(header=USER_HEADER, address=address))
            account = self.accounts.enabled_account(asserted)
            if account is None:
                raise HTTPException(403, MSG_SSO_UNKNOWN.format(name=asserted[:60]))
            return account
        basic = _basic_credentials(request.headers.get("authorization"))
        if basic is not None:
            try:
                return self.accounts.authenticate(basic[0], basic[1], self.client_address(request))
            except LockedOut as exc:
                raise HTTPException(429, str(exc)) from None
            except AccountError as exc:
                raise HTTPException(401, str(exc)) from None
        return self.accounts.session_account(request.cookies.get(SESSION_COOKIE))


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        name, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")  # malformed: fails like a wrong password
    return (name, password) if sep else ("", "")


def current_user(request: Request) -> Account:
    """The signed-in account of this request (set by the app's middleware), else LoginRequired."""
    account = getattr(request.state, "account", None)
    if account is None:
        raise LoginRequired()
    return account


def proposer(request: Request) -> Account:
    """An account that may record a review (analysts and approvers)."""
    account = current_user(request)
    if not account.can_propose:
        raise HTTPException(403, MSG_ROLE.format(role=account.role, action="record reviews"))
    return account


def approver(request: Request) -> Account:
    """An account that may approve or reject another person's proposal."""
    account = current_user(request)
    if not account.can_approve:
        raise HTTPException(403, MSG_ROLE.format(role=account.role, action="approve or reject reviews"))
    return account
