"""A request's database handle: the pool, with the request's grants in the session of every
connection it runs a statement on.

PostgreSQL applies the grants a second time (migration 0013): row-level security on the observation
tables admits only rows of the indicators in ``hub.indicators`` and the units in ``hub.units`` of
the session, so a read that forgot its SQL filter still returns only what the caller may read.
This handle is what resolvers receive as ``Context.db`` and the loaders' ``db``: before a statement
runs on a pooled connection, it makes that connection's settings this scope's.

Why a statement never runs under another caller's settings:

- Every statement goes through ``fetch``/``fetchrow``/``fetchval``/``acquire`` here, and each of
  them first brings its connection to this scope, on that same connection, before anything else.
- The settings are session settings (``set_config(..., false)``) so that callers presenting the
  same grants, the common case, reuse them: each connection remembers (``GrantedConnection``)
  the scope it last set, and setting costs a round trip only when the scope differs. What is
  remembered is forgotten before the setting statement is sent and recorded only once it has
  succeeded, so a cancelled or failed statement leaves "unknown", and the next use sets again.
- They are never set inside a transaction: a rollback would restore the previous caller's values
  while the connection remembered this one's.
- The pool does not clear them on release (hub/db/pools.py, ``_reset``): that would cost every
  statement a round trip. A connection taken from the pool directly (authentication, the token
  endpoints, /readyz, the federated map, the WebSocket revocation watch, the bulk upload's lookup
  of its report) may still hold the last request's settings; none of those reads an observation
  table (tests/trust/test_row_security.py checks their modules), and the workflow's own
  transactions read them with ``hub.every_row`` (resolvers/idempotency.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from nrhub.resolvers.scope import Scope

# The shapes the policies read (migration 0013): the codes as a JSON object's keys, written by
# PostgreSQL itself; the unit ids as sorted ranges [from, to) laid end to end (_ranges).
_SET_GRANTS = """
SELECT set_config('hub.indicators', (SELECT coalesce(jsonb_object_agg(code, true), '{}')
                                     FROM unnest($1::text[]) AS code)::text, false),
       set_config('hub.units', $2::int[]::text, false)
"""
_EVERY_UNIT = [-(2**31)]  # one range from the smallest integer on

GrantKey = tuple[tuple[str, ...], tuple[int, ...] | None]


class GrantedConnection(asyncpg.Connection):  # type: ignore[misc]
    """A request pool connection that remembers whose grants its session settings hold."""

    __slots__ = ("_grants",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._grants: GrantKey | None = None  # None: none set, or unknown

    def held_grants(self) -> GrantKey | None:
        return self._grants

    def hold_grants(self, key: GrantKey | None) -> None:
        self._grants = key


class Granted:
    """The Queryable of one request (or one WebSocket connection): ``pool`` under ``scope``.

    ``pool`` must make ``GrantedConnection``s (nrhub.db.pools.create_pool does).
    """

    __slots__ = ("_key", "_pool")

    def __init__(self, pool: asyncpg.Pool, scope: Scope) -> None:
        self._pool = pool
        self._key: GrantKey = (scope.indicators, scope.unit_ids)

    async def _grant(self, conn: Any) -> None:
        held = conn.held_grants()
        if held is self._key or held == self._key:
            return
        if conn.is_in_transaction():
            raise RuntimeError("grants are set outside transactions: a rollback would undo them unseen")
        conn.hold_grants(None)
        indicators, units = self._key
        await conn.execute(_SET_GRANTS, indicators, _EVERY_UNIT if units is None else _ranges(units))
        conn.hold_grants(self._key)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            await self._grant(conn)
            return await conn.fetch(query, *args)  # type: ignore[no-any-return]

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self._pool.acquire() as conn:
            await self._grant(conn)
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self._pool.acquire() as conn:
            await self._grant(conn)
            return await conn.fetchval(query, *args)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        """A connection of the pool holding these grants, for a transaction (idempotency)."""
        async with self._pool.acquire() as conn:
            await self._grant(conn)
            yield conn


def _ranges(unit_ids: tuple[int, ...]) -> list[int]:
    """Sorted ids as half-open ranges laid end to end: (7, 8, 9, 42) -> [7, 10, 42, 43]."""
    bounds: list[int] = []
    for unit_id in sorted(unit_ids):
        if bounds and bounds[-1] == unit_id:
            bounds[-1] = unit_id + 1
        elif not bounds or bounds[-1] < unit_id:
            bounds += [unit_id, unit_id + 1]
    return bounds
