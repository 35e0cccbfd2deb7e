"""A cap on request bodies, enforced before anything parses them or checks who sent them.

The review app's largest honest body is a review form (a reason of at most
4,000 characters: under 50 kB even percent-encoded); without a cap, a client
could make the server buffer any amount before the token check refused it.
This ASGI middleware sits outside every other layer of the app:

- a `Content-Length` over the limit is answered 413 at once, the body unread
  (and the connection closed, so the server does not drain it);
- a body without a length (chunked) is counted as it streams; the first chunk
  that passes the limit ends the request with 413. Uvicorn pauses reading the
  socket while the app does not consume, so at most one window is buffered.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
MSG_BODY_TOO_LARGE = "request body too large: at most {limit} bytes are accepted"
MSG_BAD_LENGTH = "invalid Content-Length header: {value!r}"


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit (FastAPI re-raises HTTPExceptions as is)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, MSG_BODY_TOO_LARGE.format(limit=limit), headers={"Connection": "close"})


class BodyLimit:
    """ASGI middleware: no HTTP request body over `max_bytes` reaches the app."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send, status: int, text: str) -> None:
        await PlainTextResponse(text, status_code=status, headers={"Connection": "close"})({}, _no_receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                await self._refuse(send, 400, MSG_BAD_LENGTH.format(value=declared.decode("latin-1")))
                return
            if length > self.max_bytes:
                await self._refuse(send, 413, MSG_BODY_TOO_LARGE.format(limit=self.max_bytes))
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:  # raised where no handler turned it into a response
                await self._refuse(send, 413, MSG_BODY_TOO_LARGE.format(limit=self.max_bytes))


async def _no_receive() -> Message:  # a response that is only sent never receives
    return {"type": "http.disconnect"}
