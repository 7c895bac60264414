"""One request id per request, on every route: the ``X-Request-Id`` middleware.

A caller's own ``X-Request-Id`` is kept (it ties the caller's logs to the hub's and to audit entries)
when it is a short plain token; anything else is replaced by a fresh id, so no header text reaches
the logs or the audit chain. The id is set on every response (and on a WebSocket's handshake
answer), and kept in the request's state, where :func:`request_id_of` finds it for the code that
logs correlation ids and records actors.
"""

from __future__ import annotations

import random
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Correlation ids must be unique, not secret: a process-wide generator seeded from the OS, which
# costs no system call per request (secrets.token_hex does one).
_request_ids = random.Random()


class RequestId:
    """Pure-ASGI middleware: choose the request's id, keep it in ``scope["state"]``, answer with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = choose_request_id(_header(scope))
        scope.setdefault("state", {})["request_id"] = request_id
        ours = (HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = message.get("headers") or ()
                message["headers"] = [*(h for h in headers if h[0].lower() != HEADER), ours]
            await send(message)

        await self.app(scope, receive, send_with_id)


def choose_request_id(supplied: str | None) -> str:
    """The caller's id when it is a short plain token, a fresh one otherwise."""
    if supplied and _CALLER_REQUEST_ID.fullmatch(supplied):
        return supplied
    return f"{_request_ids.getrandbits(128):032x}"


def request_id_of(scope: Scope) -> str:
    """The id :class:`RequestId` chose for this request (one is chosen here when it did not run)."""
    state = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if request_id is None:
        request_id = state["request_id"] = choose_request_id(_header(scope))
    return str(request_id)


def _header(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("latin-1")
    return None
