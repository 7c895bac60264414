"""The typed per-request context every resolver receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeAlias

import asyncpg
import strawberry

from auth.principal import Principal
from resolvers.errors import HubError
from resolvers.events import EventHub
from resolvers.loaders import Loaders
from resolvers.scope import Scope


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
    # Errors that do not null their field: a denied code inside a list argument is reported at the
    # field's path while the values the caller may read are still returned.
    side_errors: list[tuple[list[str | int], HubError]] = field(default_factory=list)

    def report(self, path: list[str | int], error: HubError) -> None:
        self.side_errors.append((path, error))


Info: TypeAlias = strawberry.Info[Context, None]
