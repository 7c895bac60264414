"""The typed per-request context every resolver receives, and the one factory that builds it.

Every transport (GraphQL over HTTP, over WebSocket) gets its Context from :class:`ContextFactory`,
so what a request carries (its principal and scope, the grants PostgreSQL applies, loaders, today,
request id, clock, events) cannot drift between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TypeAlias

import asyncpg
import strawberry

from nrhub.auth.principal import Principal
from nrhub.resolvers.errors import HubError
from nrhub.resolvers.events import EventHub
from nrhub.resolvers.federated_indicators import FederatedIndicators
from nrhub.resolvers.granted import Granted
from nrhub.resolvers.loaders import Loaders
from nrhub.resolvers.queryable import Queryable
from nrhub.resolvers.scope import Scope, resolve_scope
from nrhub.resolvers.sources.registry import SourceRegistry


@dataclass
class Context:
    db: asyncpg.Pool
    principal: Principal
    scope: Scope
    loaders: Loaders
    max_page_size: int
    today: date
    request_id: str
    # The server's clock; tests set it to either side of a deadline.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # The process's event fan-out; set on WebSocket connections only.
    events: EventHub | None = None
    # The event position when this subscription's ``subscribe`` message arrived: it is handed the
    # events published since, however long its start takes (resolvers.events).
    events_after: int | None = None
    # Errors that do not null their field: a denied code inside a list argument is reported at the
    # field's path while the values the caller may read are still returned.
    side_errors: list[tuple[list[str | int], HubError]] = field(default_factory=list)

    def report(self, path: list[str | int], error: HubError) -> None:
        self.side_errors.append((path, error))


Info: TypeAlias = strawberry.Info[Context, None]


@dataclass(frozen=True, slots=True)
class ContextFactory:
    """Builds each request's Context; made once by the app's lifespan from what it opened."""

    pool: asyncpg.Pool
    max_page_size: int
    clock: Callable[[], datetime]
    sources: SourceRegistry | None = None
    federated: FederatedIndicators | None = None
    events: EventHub | None = None  # handed to live (WebSocket) contexts only

    async def open(self, principal: Principal, request_id: str, *, live: bool = False) -> Context:
        """A new request's (or WebSocket connection's) context; ``live`` ones may subscribe to events."""
        # Authorization first: the caller's scope is fixed before any data is fetched.
        scope = await resolve_scope(self.pool, principal.grants)
        db = Granted(self.pool, scope)  # PostgreSQL applies the grants too (resolvers/granted.py)
        today = date.today()
        return Context(
            db=db,
            principal=principal,
            scope=scope,
            loaders=self._loaders(db, scope, today),
            max_page_size=self.max_page_size,
            today=today,
            request_id=request_id,
            clock=self.clock,
            events=self.events if live else None,
        )

    def for_operation(self, context: Context) -> Context:
        """Another operation on an open connection: the same caller, its own loaders and side errors,
        and the event position as it arrives (taken here, before anything waits)."""
        return replace(
            context,
            side_errors=[],
            loaders=self._loaders(context.db, context.scope, context.today),
            events_after=context.events.position if context.events is not None else None,
        )

    def _loaders(self, db: Queryable, scope: Scope, today: date) -> Loaders:
        return Loaders(db, scope, today, self.sources, self.federated)
