"""The audit chain: one append-only entry per change, each hash covering the previous one.

hash(n) = SHA-256(hash(n-1) || canonical(entry n)), where canonical is the entry as JSON with
sorted keys and only strings, integers, booleans, nulls, lists and objects (decimals and times
are written as strings), so what is read back from jsonb hashes to the same bytes.

Appends are serialised by a transaction-scoped advisory lock, so the chain stays linear under
concurrency; the UNIQUE prev_hash column is the backstop. Entries about values carry a digest of
the observation revisions they cover, so ``verify`` notices an edited value row as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

GENESIS = bytes(32)
_LOCK_KEY = 0x6E72687562 + 1  # next to the migration lock's key, for recognisability

_SELECT_HEAD = "SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1"
_INSERT = """
INSERT INTO audit_entry (seq, occurred_at, actor_agency, actor_client, actor_user, action, subject,
                         before, after, request_id, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9::text::jsonb, $10, $11, $12)
"""
_SELECT_RANGE = """
SELECT seq, occurred_at, actor_agency, actor_client, actor_user, action, subject, before::text, after::text,
       request_id, prev_hash, hash
FROM audit_entry WHERE seq > $1 ORDER BY seq LIMIT $2
"""
# A digest of observation revisions, computed in PostgreSQL (bulk loads cover millions of rows):
# SHA-256 over one text line per revision, in id order, every column written out.
_DIGEST = """
SELECT encode(sha256(convert_to(coalesce(string_agg(concat_ws('|', id, indicator_code, unit_id, period, dims,
       value::text, status, coalesce(submission_id::text, ''), coalesce(source, ''), coalesce(previous_id::text, '')),
       E'\\n' ORDER BY id), ''), 'UTF8')), 'hex')
FROM observation_revision WHERE {where}
"""
_DIGEST_IDS = _DIGEST.format(where="id = ANY($1::bigint[])")
_DIGEST_RANGE = _DIGEST.format(where="id BETWEEN $1 AND $2 AND source = $3")


@dataclass(frozen=True, slots=True)
class Actor:
    agency: str | None
    client: str | None
    user: str | None
    request_id: str | None = None


SYSTEM = Actor(agency=None, client=None, user="nrhub", request_id=None)


def plain(value: Any) -> Any:
    """The JSON-safe form hashed and stored: decimals and times become strings."""
    if isinstance(value, Decimal | datetime):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float):
        raise TypeError("floats are not allowed in audit entries; use Decimal")
    return value


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def entry_hash(prev_hash: bytes, entry: dict[str, Any]) -> bytes:
    canonical = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash + canonical).digest()


def _canonical(
    seq: int, occurred_at: datetime, actor: Actor, action: str, subject: str, before: Any, after: Any
) -> dict[str, Any]:
    return {
        "seq": seq,
        "occurred_at": occurred_at.isoformat(),
        "agency": actor.agency,
        "client": actor.client,
        "user": actor.user,
        "action": action,
        "subject": subject,
        "before": before,
        "after": after,
        "request_id": actor.request_id,
    }


async def append_entry(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    subject: str,
    *,
    before: Any = None,
    after: Any = None,
    at: datetime,
) -> int:
    """Append one entry inside the caller's transaction; returns its sequence number."""
    assert conn.is_in_transaction(), "audit entries are written in the transaction of the change"
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
    head = await conn.fetchrow(_SELECT_HEAD)
    seq, prev = (head["seq"] + 1, bytes(head["hash"])) if head else (1, GENESIS)
    at = at.astimezone(UTC)  # as PostgreSQL gives it back, so the canonical form is stable
    before, after = plain(before), plain(after)
    digest = entry_hash(prev, _canonical(seq, at, actor, action, subject, before, after))
    await conn.execute(
        _INSERT,
        seq,
        at,
        actor.agency,
        actor.client,
        actor.user,
        action,
        subject,
        _json(before),
        _json(after),
        actor.request_id,
        prev,
        digest,
    )
    return seq


async def revision_digest(conn: asyncpg.Connection, revision_ids: Sequence[int]) -> str:
    digest: str = await conn.fetchval(_DIGEST_IDS, list(revision_ids))
    return digest


async def revision_range_digest(conn: asyncpg.Connection, first: int, last: int, source: str) -> str:
    digest: str = await conn.fetchval(_DIGEST_RANGE, first, last, source)
    return digest


@dataclass(frozen=True, slots=True)
class VerifyResult:
    entries: int
    head_hash: bytes
    first_bad: int | None
    problem: str | None


async def iterate_entries(conn: asyncpg.Connection, batch: int = 5000) -> AsyncIterator[asyncpg.Record]:
    last = 0
    while True:
        rows = await conn.fetch(_SELECT_RANGE, last, batch)
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1]["seq"]


async def verify_chain(conn: asyncpg.Connection) -> VerifyResult:
    """Recompute the chain, and the digests of the values entries cover; name the first bad entry."""
    prev, count, expected_seq = GENESIS, 0, 1
    async for row in iterate_entries(conn):
        seq = row["seq"]
        actor = Actor(row["actor_agency"], row["actor_client"], row["actor_user"], row["request_id"])
        after = _loads(row["after"])
        canonical = _canonical(
            seq, row["occurred_at"], actor, row["action"], row["subject"], _loads(row["before"]), after
        )
        if seq != expected_seq:
            return VerifyResult(count, prev, seq, f"entry {seq} follows entry {expected_seq - 1}: entries are missing")
        if bytes(row["prev_hash"]) != prev or entry_hash(prev, canonical) != bytes(row["hash"]):
            return VerifyResult(
                count,
                prev,
                seq,
                f"entry {seq} ({row['action']} {row['subject']}) does not hash to its recorded value: it was altered",
            )
        problem = await _check_covered_values(conn, after)
        if problem:
            return VerifyResult(count, prev, seq, f"entry {seq} ({row['action']} {row['subject']}): {problem}")
        prev, count, expected_seq = bytes(row["hash"]), count + 1, seq + 1
    return VerifyResult(count, prev, None, None)


async def _check_covered_values(conn: asyncpg.Connection, after: Any) -> str | None:
    if not isinstance(after, dict) or "revision_digest" not in after:
        return None
    if "revisions" in after:
        actual = await revision_digest(conn, after["revisions"])
    else:
        first, last = after["revision_range"]
        actual = await revision_range_digest(conn, first, last, after["source"])
    if actual != after["revision_digest"]:
        return "the observation values it covers were altered"
    return None
