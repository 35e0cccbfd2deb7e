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

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
MSG_BODY_TOO_LARGE = "request body too large: at most {limit} bytes are accepted"
MSG_BAD_LENGTH = "invalid Content-Length header: {value!r}"


class BodyTooLarge(Exception):
    """Raised from `receive` when a streamed body passes the limit."""


class BodyLimit:
    """ASGI middleware: no HTTP request body over `max_bytes` reaches the app."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, text: str) -> None:
        await PlainTextResponse(text, status_code=status, headers={"Connection": "close"})(scope, _no_receive, send)

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
                await self._refuse(scope, send, 400, MSG_BAD_LENGTH.format(value=declared.decode("latin-1")))
                return
            if length > self.max_bytes:
                await self._refuse(scope, send, 413, MSG_BODY_TOO_LARGE.format(limit=self.max_bytes))
                return
        seen = 0
        exceeded = answered = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(MSG_BODY_TOO_LARGE.format(limit=self.max_bytes))
            return message

        async def answer(message: Message) -> None:
            # Whatever an inner layer makes of the exception (FastAPI turns any body error into a 400),
            # the client is told 413; the app's own messages are dropped.
            nonlocal answered
            if exceeded:
                if not answered and message["type"] == "http.response.start":
                    answered = True
                    await self._refuse(scope, send, 413, MSG_BODY_TOO_LARGE.format(limit=self.max_bytes))
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, answer)
        except Exception:  # BodyTooLarge, or what an inner layer made of it
            if not exceeded:
                raise
            if not answered:
                await self._refuse(scope, send, 413, MSG_BODY_TOO_LARGE.format(limit=self.max_bytes))


async def _no_receive() -> Message:  # a response that is only sent never receives
    return {"type": "http.disconnect"}
