"""The ``postgres`` kind: another PostgreSQL database, read through a pool of its own.

Every indicator's SQL takes ``$1`` (unit codes, ``text[]``) and ``$2`` (periods, ``text[]``) and
returns ``unit``, ``period``, ``value`` and optionally ``dims`` and ``status``. The SQL of all the
indicators asked for in one call runs as one statement (a ``UNION ALL``), so a request costs this
database one round trip whatever the number of indicators.

The pool is opened on first use (a source that is down when the hub starts must not stop it),
its sessions are read-only (``default_transaction_read_only``, and every call runs in a
read-only transaction), and ``statement_timeout`` makes the server give up when the hub does.
Rows are read through a cursor and counted, so an oversized answer is refused part-way through.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from nrhub.resolvers.sources.config import FieldMapping, SourceConfig, SourceConfigError
from nrhub.resolvers.sources.failures import (
    SourceConnectionFailed,
    SourceFailure,
    SourceTimeout,
    SourceTooLarge,
    SourceUpstreamError,
)
from nrhub.resolvers.sources.values import Question, SourceValue, parse_json, read_rows

_MAPPING = FieldMapping()
# Types the two parameters whatever an indicator's SQL does with them; never executed.
_ARGUMENTS = "WITH hub_arguments AS (SELECT $1::text[] AS units, $2::text[] AS periods)"
KEYS = frozenset({"url", "database", "pool_size"})


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    """Another PostgreSQL database, read through its own read-only pool.

    ``url`` is a postgresql:// URL, or a plain database name on the hub's own server until
    hub/config/sources.py resolves it.
    """

    url: str
    pool_size: int = 2


def parse_target(table: Mapping[str, Any]) -> PostgresTarget:
    """``url`` or ``database``, and ``pool_size``."""
    url, database = table.get("url"), table.get("database")
    if (url is None) == (database is None):
        raise SourceConfigError("give either url (postgresql://…) or database (on the hub's own server)")
    if url is not None and (not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://"))):
        raise SourceConfigError("url must be a postgresql:// URL")
    if database is not None and (not isinstance(database, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", database)):
        raise SourceConfigError("database must be a plain database name")
    pool_size = table.get("pool_size", 2)
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or not 1 <= pool_size <= 100:
        raise SourceConfigError("pool_size must be an integer from 1 to 100")
    return PostgresTarget(url if isinstance(url, str) else str(database), pool_size)


class PostgresConnector:
    idempotent = True  # read-only transactions
    batches_indicators = True

    def __init__(self, config: SourceConfig) -> None:
        assert isinstance(config.target, PostgresTarget)
        self.name = config.name
        self.target = config.target
        self.policy = config.policy
        self.sql = {code: sql.strip().rstrip(";") for code, sql in config.indicators}
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def ask(self, question: Question) -> list[SourceValue]:
        pool = await self._open()
        grouped: dict[str, list[object]] = defaultdict(list)
        size = 0
        try:
            async with pool.acquire() as conn, conn.transaction(readonly=True):
                cursor = conn.cursor(self.statement(question.indicators), list(question.units), list(question.periods))
                async for record in cursor:
                    size += len(record[1])
                    if size > self.policy.max_bytes:
                        raise SourceTooLarge(f"more than {self.policy.max_bytes} bytes of rows")
                    grouped[record[0]].append(parse_json(record[1]))
        except SourceFailure:
            raise
        except asyncpg.QueryCanceledError as exc:
            raise SourceTimeout(f"statement_timeout: {exc}") from None
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
            raise SourceConnectionFailed(f"{type(exc).__name__}: {exc}") from None
        except asyncpg.PostgresError as exc:
            raise SourceUpstreamError(f"SQLSTATE {exc.sqlstate}: {exc}") from None
        values = []
        for code in question.indicators:
            one = Question((code,), question.units, question.periods)
            values += read_rows(grouped[code], _MAPPING, one, names={}, default_status=self.policy.status)
        return values

    def statement(self, indicators: tuple[str, ...]) -> str:
        """One statement for all ``indicators``: each row tagged with its code, as JSON text."""
        parts = [
            f"SELECT '{code}'::text AS indicator, to_jsonb(q)::text AS row FROM ({self.sql[code]}) AS q"
            for code in indicators
        ]
        return f"{_ARGUMENTS}\n" + "\nUNION ALL\n".join(parts)

    async def _open(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self.target.url,
                        min_size=0,
                        max_size=self.target.pool_size,
                        timeout=self.policy.timeout,
                        server_settings={
                            "default_transaction_read_only": "on",
                            "statement_timeout": str(max(1, int(self.policy.timeout * 1000))),
                            "application_name": f"nrhub source {self.name}"[:63],
                        },
                    )
                except (OSError, asyncpg.PostgresError) as exc:
                    raise SourceConnectionFailed(f"{type(exc).__name__}: {exc}") from None
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), 5)
            except TimeoutError:
                self._pool.terminate()
