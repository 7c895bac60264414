"""What data functions run SQL on: an asyncpg pool or connection (both have these methods)."""

from __future__ import annotations

from typing import Any, Protocol

import asyncpg


class Queryable(Protocol):
    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]: ...
    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
