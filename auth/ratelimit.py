"""Fixed-window counters in PostgreSQL, so every hub process counts against the same limit."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

_HIT = """
INSERT INTO rate_limit AS r (bucket, window_start, hits)
SELECT b, to_timestamp($2), 1 FROM unnest($1::text[]) AS b
ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1
RETURNING bucket, hits
"""
_FORGIVE = "UPDATE rate_limit SET hits = hits - 1 WHERE bucket = ANY($1::text[]) AND window_start = to_timestamp($2)"
_PRUNE = "DELETE FROM rate_limit WHERE window_start < now() - interval '1 hour'"


@dataclass(frozen=True, slots=True)
class Counted:
    """One counted attempt: its buckets and window (to take it back), and how long to wait if refused."""

    buckets: tuple[str, ...]
    window_start: int
    retry_after: int | None  # seconds (Retry-After) when a bucket is over its limit; None: go ahead


class RateLimiter:
    def __init__(self, pool: asyncpg.Pool, *, window_seconds: int = 60) -> None:
        self._pool = pool
        self._window = window_seconds
        self._hits_since_prune = 0

    async def hit(self, limits: Mapping[str, int]) -> Counted:
        """Count one attempt in each bucket, before the work it guards, so that concurrent attempts
        cannot all slip under a limit; refused if any bucket is then over its limit."""
        now = time.time()
        start = int(now // self._window * self._window)
        rows = await self._pool.fetch(_HIT, list(limits), start)
        self._hits_since_prune += 1
        if self._hits_since_prune >= 1000:
            self._hits_since_prune = 0
            await self._pool.execute(_PRUNE)
        over = any(row["hits"] > limits[row["bucket"]] for row in rows)
        return Counted(tuple(limits), start, max(1, int(start + self._window - now) + 1) if over else None)

    async def forgive(self, counted: Counted) -> None:
        """Take an attempt back: it turned out to be no failure (a right password), and these limits
        count failures only."""
        await self._pool.execute(_FORGIVE, list(counted.buckets), counted.window_start)
