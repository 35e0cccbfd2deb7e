"""Run the review app with uvicorn: on loopback, or behind the bank's reverse proxy (SSO mode)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

MSG_NOT_LOOPBACK = (
    "the review app only listens on a loopback address (127.0.0.1, ::1, localhost) unless it runs behind a "
    "reverse proxy named with --trusted-proxy; got {host!r}"
)


def check_loopback(host: str, behind_proxy: bool = False) -> str:
    """The address to listen on: loopback, or any address when a trusted proxy stands in front (SSO mode)."""
    if host == "localhost" or behind_proxy:
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(MSG_NOT_LOOPBACK.format(host=host))


def serve(
    run_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    db_url: str | None = None,
    keystore: str | Path | None = None,
    unsigned: bool = False,
    users_db: str | None = None,
    trusted_proxies: list[str] | tuple[str, ...] = (),
    public_url: str | None = None,
) -> None:
    """Start the app and block until interrupted (NoSigningKey first when there is no key and not `unsigned`)."""
    import uvicorn
    from sqlalchemy.engine import make_url

    from ._app import create_app
    from ._auth import USER_HEADER, parse_proxies

    check_loopback(host, behind_proxy=bool(parse_proxies(trusted_proxies)))
    app = create_app(run_dir, db_url=db_url, keystore=keystore, unsigned=unsigned, users_db=users_db,
                     trusted_proxies=trusted_proxies, public_url=public_url)
    accounts = app.state.auth.accounts
    shown = f"[{host}]" if ":" in host else host
    print(f"Review app for run {app.state.run.run_id}: http://{shown}:{port}/", flush=True)
    users = make_url(accounts.url).render_as_string(hide_password=True)
    n = len([a for a in accounts.list() if not a.disabled])
    print(f"Accounts ({n} enabled) are read from {users}; add them with `credit-audit users add`", flush=True)
    if trusted_proxies:
        print(f"SSO mode: {USER_HEADER} is trusted from {', '.join(trusted_proxies)} only", flush=True)
    db = make_url(app.state.store.db_url).render_as_string(hide_password=True)
    print(f"Reviews are stored in {db} and exported to {app.state.store.trail.path}", flush=True)
    signer = app.state.store.signer()
    if signer is None:
        print("WARNING: reviews are NOT signed (--unsigned): verify can only check them for consistency", flush=True)
    else:
        print(f"Reviews are signed with key {signer.key_id} ({signer.source})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)
