"""The anchors' asyncpg pool, set up like the hub's, and the embedded server's URL.

The pool has the hub's default sizes (2..10) and, like the hub's, no reset round trip on release
(hub/db/pools.py ``_reset``): otherwise the anchors would pay a round trip per request the hub
does not, and the comparison would flatter the hub.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

POOL_MIN_SIZE, POOL_MAX_SIZE = 2, 10


async def _reset(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=POOL_MIN_SIZE, max_size=POOL_MAX_SIZE, reset=_reset, timeout=10, command_timeout=60
    )
    assert pool is not None
    return pool


def embedded_dsn(data_dir: Path, database: str = "hub") -> str:
    """The URL of the embedded PostgreSQL running under ``data_dir/pg`` (read from postmaster.pid).

    Line 4 of postmaster.pid is the port and line 5 the socket directory. The server stays up
    only while some process (here: the ``nrhub serve`` the benchmark started) holds it.
    """
    lines = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()
    port, socket_dir = lines[3].strip(), lines[4].strip()
    return f"postgresql://postgres@/{database}?host={socket_dir}&port={port}"
