"""The hub's own database out of reach: which errors mean it, one log line per incident, one answer.

While PostgreSQL is down, restarting, refusing connections or not answering within a request's
deadline, every request fails the same way, and a log line (or a traceback) per request would bury
the one line an operator needs. :data:`OUTAGE` notes each failure, writes one warning when an
incident starts and one line when the database answers again (with how many requests were refused
meanwhile). Callers are answered 503 with ``Retry-After`` and the ``SOURCE_UNAVAILABLE`` code
(DESIGN's fixed set: the hub's database is the source every answer comes from); OAuth endpoints
answer RFC 6749's ``temporarily_unavailable``.

It lives in ``auth``, the lowest layer that serves HTTP, so the token endpoint, the GraphQL
endpoint and the WebSocket sessions classify and answer alike.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
import orjson
from starlette.responses import Response
from starlette.types import Scope

log = logging.getLogger("hub")

RETRY_AFTER = 5  # seconds; PostgreSQL restarts in about that, and the listener's back-off tops out there
MESSAGE = "the hub's database is unavailable; retry in a few seconds"

# Errors that say the database is out of reach rather than that a statement was wrong: the
# connection refused, reset or closed under a query (OSError, asyncpg's InterfaceError and its
# ConnectionDoesNotExistError), class 08 (connection exception), class 57 (operator intervention:
# admin/crash shutdown, cannot connect now), class 53 (too many connections, out of memory), a
# connection or pool acquisition that did not complete in time, and asyncpg's InternalClientError,
# which a pooled connection raises for a while after its server restarted under it ("cannot switch
# to state 12; another operation is in progress": bench/soak.py saw one to four per restart).
_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # but not QueryCanceledError (57014), excluded below
    asyncpg.InsufficientResourcesError,
    asyncpg.InternalClientError,
)


def database_down(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it) says the database is out of reach."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, _DOWN) and not isinstance(error, asyncpg.QueryCanceledError):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


class Outage:
    """Counts the requests refused during an incident, and logs its start and its end once each."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.refused = 0

    def noticed(self, error: BaseException) -> None:
        self.refused += 1
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "database unavailable (%s: %s); answering 503 until it is back",
                type(error).__name__,
                str(error)[:200] or "no detail",
            )

    def cleared(self) -> None:
        """The database answered: end the incident, if there was one."""
        if self.since is None:
            return
        log.warning(
            "database available again after %.1f s; %d requests were answered 503 meanwhile",
            time.monotonic() - self.since,
            self.refused,
        )
        self.since, self.refused = None, 0


OUTAGE = Outage()


class _PoolFloorRetries(logging.Filter):
    """asyncpg's pools log a warning with a traceback each time they fail to reopen their minimum of
    connections, every second or so while the database is down: counted here as the incident's
    instead, which logs once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Failed to restore the pool connection floor"):
            error = record.exc_info[1] if record.exc_info else None
            OUTAGE.noticed(error or ConnectionError("the pool could not reopen its connections"))
            return False
        return True


logging.getLogger("asyncpg.pool").addFilter(_PoolFloorRetries())


def unavailable_response(scope: Scope, message: str = MESSAGE) -> Response:
    """503 in the route's own error format: OAuth's for the authorization server, GraphQL's elsewhere."""
    path = scope.get("path", "")
    body: dict[str, Any]
    if path.startswith(("/oauth/", "/.well-known/")):
        body = {"error": "temporarily_unavailable", "error_description": message}
    else:
        body = {"errors": [{"message": message, "extensions": {"code": "SOURCE_UNAVAILABLE"}}]}
    return Response(
        orjson.dumps(body),
        503,
        headers={"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"},
        media_type="application/json",
    )
