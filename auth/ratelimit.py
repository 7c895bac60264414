"""Fixed-window counters in PostgreSQL, so every hub process counts against the same limit."""

from __future__ import annotations

import time

import asyncpg

_HIT = """
INSERT INTO rate_limit AS r (bucket, window_start, hits)
SELECT b, to_timestamp($2), 1 FROM unnest($1::text[]) AS b
ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1
RETURNING hits
"""
_PRUNE = "DELETE FROM rate_limit WHERE window_start < now() - interval '1 hour'"


class RateLimiter:
    def __init__(self, pool: asyncpg.Pool, *, limit: int, window_seconds: int = 60) -> None:
        self._pool = pool
        self._limit = limit
        self._window = window_seconds
        self._hits_since_prune = 0

    async def hit(self, buckets: list[str]) -> int | None:
        """Count one hit in each bucket; return seconds to wait (Retry-After) if any is over."""
        now = time.time()
        start = int(now // self._window * self._window)
        rows = await self._pool.fetch(_HIT, buckets, start)
        self._hits_since_prune += 1
        if self._hits_since_prune >= 1000:
            self._hits_since_prune = 0
            await self._pool.execute(_PRUNE)
        if max(r["hits"] for r in rows) > self._limit:
            return max(1, int(start + self._window - now) + 1)
        return None
