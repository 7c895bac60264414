"""The typed per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TypeAlias

import strawberry

from auth.principal import Principal
from resolvers.errors import HubError
from resolvers.loaders import Loaders
from resolvers.queryable import Queryable
from resolvers.scope import Scope


@dataclass
class Context:
    db: Queryable
    principal: Principal
    scope: Scope
    loaders: Loaders
    max_page_size: int
    today: date
    request_id: str
    # Errors that do not null their field: a denied code inside a list argument is reported at the
    # field's path while the values the caller may read are still returned.
    side_errors: list[tuple[list[str | int], HubError]] = field(default_factory=list)

    def report(self, path: list[str | int], error: HubError) -> None:
        self.side_errors.append((path, error))


Info: TypeAlias = strawberry.Info[Context, None]
