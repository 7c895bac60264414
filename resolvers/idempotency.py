"""Idempotency keys for creating and changing mutations, scoped per client.

The key is recorded in the same transaction as the change it guards: a retry with the same key and
input gets the first result; the same key with different input is a CONFLICT. Concurrent requests
with one key are serialised on a transaction lock of that key before either looks for a result, so
exactly one makes the change and every other one answers with its result: without the lock, a
loser that started its change before the winner committed failed on the change itself (a report
already submitted: CONFLICT) instead of replaying the winner's answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

from nrhub.resolvers.audit import plain
from nrhub.resolvers.errors import BadUserInput, Conflict

_SELECT = "SELECT operation, request_hash, result::text FROM idempotency_key WHERE client_id = $1 AND key = $2"
# The change is the reporting workflow's, which must read every observation row whatever the
# caller may read (the revision an accepted value supersedes, the revisions an audit digest
# covers): hub.every_row lifts row-level security (migration 0013) for this transaction only.
# The workflow confines its writes itself and returns no figure it read.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || $2, 0)), set_config('hub.every_row', 'on', true)"
_INSERT = """
INSERT INTO idempotency_key (client_id, key, operation, request_hash, result) VALUES ($1, $2, $3, $4, $5::text::jsonb)
"""


async def idempotent(
    pool: asyncpg.Pool,
    client_id: str,
    key: str,
    operation: str,
    request: dict[str, Any],
    change: Callable[[asyncpg.Connection], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run ``change`` in a transaction once per (client, key); return its (JSON-able) result."""
    if not 8 <= len(key) <= 128:
        raise BadUserInput("idempotencyKey must be 8 to 128 characters (a UUID is a good choice)")
    request_hash = hashlib.sha256(orjson.dumps([operation, plain(request)], option=orjson.OPT_SORT_KEYS)).hexdigest()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK, client_id, key)
        done = await _replay(conn, client_id, key, operation, request_hash)
        if done is not None:
            return done
        result = await change(conn)
        await conn.execute(_INSERT, client_id, key, operation, request_hash, orjson.dumps(plain(result)).decode())
        return result


async def _replay(
    conn: asyncpg.Connection, client_id: str, key: str, operation: str, request_hash: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(_SELECT, client_id, key)
    if row is None:
        return None
    if row["operation"] != operation or row["request_hash"] != request_hash:
        raise Conflict("this idempotency key was used with a different request")
    result: dict[str, Any] = orjson.loads(row["result"])
    return result
