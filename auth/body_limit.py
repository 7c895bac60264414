"""One limit on request bodies for every route (HUB_MAX_BODY_BYTES), as a pure-ASGI middleware.

The middleware hands the app a ``receive`` that counts the body as it streams in and raises
:class:`BodyTooLarge` the moment the count passes the limit, or before the first byte is read when
``Content-Length`` already announces more. Nothing past the limit is ever buffered: a chunked body
of any size costs the hub at most the limit plus one chunk.

Each route catches :class:`BodyTooLarge` where it reads its body and answers 413 in its own error
format (GraphQL errors, OAuth errors, the sign-in page); a route that does not is answered in
plain text here, so no route can read an unbounded body.

It lives in ``auth``, the lowest layer that serves HTTP, so the OAuth endpoints can catch its
exception; the app factory (``nrhub.web.app``) installs it.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nrhub.auth.http_status import status_for


class BodyTooLarge(Exception):
    """The request body is larger than the hub accepts (HTTP 413, RFC 9110 section 15.5.14).

    Its code is HTTP's alone: GraphQL and upload callers see BAD_USER_INPUT, from the fixed set.
    """

    code = "PAYLOAD_TOO_LARGE"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.description = f"the request body is larger than {limit} bytes"
        super().__init__(self.description)


class BodyLimit:
    """Refuses request bodies past ``max_bytes`` for every HTTP route of the wrapped app."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        announced = _content_length(scope) > limit
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            # Once the answer is under way, receive() only listens for the caller leaving.
            if announced and not started:
                raise BodyTooLarge(limit)  # before reading: a client waiting for 100-continue sends nothing
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await PlainTextResponse(exc.description, status_for(exc))(scope, receive, send)


def _content_length(scope: Scope) -> int:
    """The announced body length; -1 when none (chunked) or when it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return -1
