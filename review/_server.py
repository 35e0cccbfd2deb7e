"""Run the review app on loopback with uvicorn; the write token is printed once at start-up."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

TOKEN_ENV = "CREDIT_AUDIT_REVIEW_TOKEN"
MSG_NOT_LOOPBACK = "the review app only listens on a loopback address (127.0.0.1, ::1, localhost), got {host!r}"


def check_loopback(host: str) -> str:
    if host == "localhost":
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
    token: str | None = None,
    keystore: str | Path | None = None,
    unsigned: bool = False,
) -> None:
    """Start the app and block until interrupted (NoSigningKey first when there is no key and not `unsigned`)."""
    import uvicorn
    from sqlalchemy.engine import make_url

    from ._app import create_app
    from ._security import new_token

    check_loopback(host)
    token = token or os.environ.get(TOKEN_ENV) or new_token()
    app = create_app(run_dir, token=token, db_url=db_url, keystore=keystore, unsigned=unsigned)
    shown = f"[{host}]" if ":" in host else host
    print(f"Review app for run {app.state.run.run_id}: http://{shown}:{port}/", flush=True)
    print(f"Write token (needed to save reviews): {token}", flush=True)
    db = make_url(app.state.store.db_url).render_as_string(hide_password=True)
    print(f"Reviews are stored in {db} and exported to {app.state.store.trail.path}", flush=True)
    signer = app.state.store.signer()
    if signer is None:
        print("WARNING: reviews are NOT signed (--unsigned): verify can only check them for consistency", flush=True)
    else:
        print(f"Reviews are signed with key {signer.key_id} ({signer.source})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
