"""One deadline per HTTP request, from arrival to answer, and 503 when the hub's database is out of reach.

A pure-ASGI middleware, inside the request id's (so every answer carries X-Request-Id). It sets
the request's deadline (``REQUEST_DEADLINE``, HUB_EXECUTION_TIMEOUT after arrival), which execution
also obeys (schema.time_limit), and cancels whatever is still running ``GRACE`` seconds past it:
reading the body, checking the token, waiting for a pool connection. Execution that reaches its
deadline answers QUERY_TOO_COMPLEX itself; anything else that does is answered here.

Failures that mean the database is unavailable (auth.outage) are answered 503 with Retry-After in
the route's error format, logged once per incident, never as a traceback per request.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nrhub.auth.outage import OUTAGE, database_down, unavailable_response
from nrhub.schema.time_limit import REQUEST_DEADLINE

GRACE = 1.0  # seconds past the deadline for execution to answer its own timeout before it is cut


class RequestDeadline:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # a WebSocket lives as long as its token (nrhub.web.ws)
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        token = REQUEST_DEADLINE.set(deadline)
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout_at(deadline + GRACE):
                await self.app(scope, receive, watched_send)
        except TimeoutError as exc:
            # Not execution's (it answers its own): the token check, a pool connection or the body
            # waited past the deadline, which in practice means a database that does not answer.
            if started:
                raise
            OUTAGE.noticed(exc)
            message = f"no answer within the {self.seconds:g} s limit: the hub's database is slow or unavailable"
            await unavailable_response(scope, message)(scope, receive, send)
        except Exception as exc:
            if started or not database_down(exc):
                raise
            OUTAGE.noticed(exc)
            await unavailable_response(scope)(scope, receive, send)
        finally:
            REQUEST_DEADLINE.reset(token)
