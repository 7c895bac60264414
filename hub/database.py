"""The asyncpg pool the hub serves from, and the connection errors it reports in plain words."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from hub.settings import Settings


class DatabaseUnreachable(Exception):
    """The configured database cannot be reached; the message says where and why."""


APP_ROLE = "nrhub_app"


async def _init_request_connection(conn: asyncpg.Connection) -> None:
    # Serve as the restricted role (migration 0009), whatever the URL's user: request code cannot
    # UPDATE, DELETE or TRUNCATE audit entries or observation revisions. Before that migration
    # the role does not exist yet, and /readyz reports the pending migration. (The CLI's
    # operator commands, migrations included, keep the URL's own user.)
    try:
        await conn.execute(f"SET ROLE {APP_ROLE}")
    except asyncpg.UndefinedObjectError:
        pass
    await _init_connection(conn)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out through orjson: audit payloads and federated values are JSON.
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        format="text",
    )
    await conn.set_type_codec("json", schema="pg_catalog", encoder=json.dumps, decoder=orjson.loads, format="text")


async def _reset(conn: asyncpg.Connection) -> None:
    # asyncpg's default reset costs a round trip on every release (measured: a point lookup goes
    # from 0.14 ms to 0.25 ms). The hub's request connections set no session state, LISTEN on
    # nothing and release with no open transaction, so there is nothing to reset.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(settings: Settings, url: str) -> asyncpg.Pool:
    """Open the pool; raise DatabaseUnreachable with a one-line reason when it cannot connect."""
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            init=_init_request_connection,
            reset=_reset,
            timeout=10,
            command_timeout=60,
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseUnreachable(f"cannot connect to the database at {describe(url)}: {exc}") from exc
    assert pool is not None
    return pool


async def connect(url: str, **kwargs: Any) -> asyncpg.Connection:
    """One connection (for the CLI), with the same error wording as the pool."""
    try:
        conn = await asyncpg.connect(url, timeout=10, **kwargs)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseUnreachable(f"cannot connect to the database at {describe(url)}: {exc}") from exc
    await _init_connection(conn)
    return conn


def describe(url: str) -> str:
    """The URL without its password, fit for an error message or a log line."""
    parts = urlsplit(url)
    host = parts.hostname or "local socket"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"
