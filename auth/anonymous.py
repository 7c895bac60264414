"""The principal of a caller without a token: PUBLIC indicators, every region, nothing else.

Until the OAuth server lands this is how the demo is read; with ``public_read`` off, anonymous
callers read nothing. The indicator list is cached briefly; it changes only with the catalogue.
"""

from __future__ import annotations

import time

import asyncpg

from nrhub.auth.principal import ANONYMOUS, Grants, Principal

_SELECT_PUBLIC = "SELECT coalesce(array_agg(code), '{}') FROM indicator WHERE sensitivity = 'PUBLIC'"
_TTL_SECONDS = 5.0


class PublicReader:
    def __init__(self, pool: asyncpg.Pool, *, enabled: bool) -> None:
        self._pool = pool
        self._enabled = enabled
        self._cached: Principal = ANONYMOUS
        self._expires = 0.0

    async def principal(self) -> Principal:
        if not self._enabled:
            return ANONYMOUS
        if time.monotonic() >= self._expires:
            codes = await self._pool.fetchval(_SELECT_PUBLIC)
            self._cached = Principal(
                grants=Grants(indicators=frozenset(codes), regions=None),
                scopes=frozenset({"catalog:read", "data:read"}),
            )
            self._expires = time.monotonic() + _TTL_SECONDS
        return self._cached
