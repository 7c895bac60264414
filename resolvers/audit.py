"""The audit chain: one append-only entry per change, each hash covering the previous one.

hash(n) = SHA-256(hash(n-1) || canonical(entry n)), where canonical is the entry as JSON with
sorted keys and only strings, integers, booleans, nulls, lists and objects (decimals and times
are written as strings), so what is read back from jsonb hashes to the same bytes.

Appends are serialised by a transaction-scoped advisory lock, so the chain stays linear under
concurrency; the UNIQUE prev_hash column is the backstop. Entries about values carry a digest of
the observation revisions they cover, so ``verify`` notices an edited value row as well.

The API reads neither the chain nor the revisions but observation_current and observation_latest,
so ``verify_served`` proves those too: every revision is covered by an audit entry, and both served
tables are exactly what the revisions say (recomputed here, independently of the trigger that
keeps them).
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


# Revisions no verified entry covers: acceptances list their revision ids, loads a range of one source.
_UNCOVERED = """
WITH listed AS (
    SELECT DISTINCT jsonb_array_elements_text(after->'revisions')::bigint AS id FROM audit_entry
    WHERE after ? 'revision_digest' AND jsonb_typeof(after->'revisions') = 'array'
), ranges AS (  -- one multirange per source: a binary search per revision, however many loads
    SELECT after->>'source' AS source,
           range_agg(int8range((after->'revision_range'->>0)::bigint, (after->'revision_range'->>1)::bigint,
                               '[]')) AS ids
    FROM audit_entry
    WHERE after ? 'revision_digest' AND NOT after ? 'revisions' AND jsonb_typeof(after->'revision_range') = 'array'
    GROUP BY 1
)
SELECT r.id, r.indicator_code, r.unit_id, u.code AS unit_code, r.period, r.dims, count(*) OVER () AS total
FROM observation_revision r LEFT JOIN admin_unit u ON u.id = r.unit_id
WHERE NOT EXISTS (SELECT 1 FROM listed l WHERE l.id = r.id)
  AND NOT EXISTS (SELECT 1 FROM ranges g WHERE g.source = r.source AND r.id <@ g.ids)
ORDER BY r.id LIMIT 3
"""
# What the served tables must hold. A key's current revision is the one nothing supersedes (history
# is one chain per key); a series' latest is the current revision of its latest period. Values are
# compared as text: 1.50 served for 1.5 is a change a reader sees.
_EXPECTED_CURRENT = """
SELECT r.indicator_code, r.unit_id, r.period, r.dims, r.value, r.status, r.id AS revision_id, r.submission_id, r.source
FROM observation_revision r
WHERE NOT EXISTS (SELECT 1 FROM observation_revision n WHERE n.previous_id = r.id)
"""


def _differences(table: str, expected: str, key: tuple[str, ...], compared: tuple[str, ...]) -> str:
    """Rows of ``table`` that differ from ``expected`` (missing, extra or changed), the first three."""
    join = " AND ".join(f"s.{c} = e.{c}" for c in key)
    return f"""
WITH expected AS ({expected})
SELECT coalesce(e.indicator_code, s.indicator_code) AS indicator_code, coalesce(e.unit_id, s.unit_id) AS unit_id,
       u.code AS unit_code, coalesce(e.period, s.period) AS period, coalesce(e.dims, s.dims) AS dims,
       s.value::text AS served, s.revision_id AS served_revision, e.value::text AS expected,
       e.revision_id AS expected_revision, count(*) OVER () AS total
FROM expected e FULL JOIN {table} s ON {join}
LEFT JOIN admin_unit u ON u.id = coalesce(e.unit_id, s.unit_id)
WHERE ({", ".join(f"e.{c}" for c in compared)}) IS DISTINCT FROM ({", ".join(f"s.{c}" for c in compared)})
ORDER BY 1, 2, 4, 5 LIMIT 3
"""


_COMPARED = ("value::text", "status", "revision_id", "submission_id", "source")
_CURRENT_DIFFERENCES = _differences(
    "observation_current", _EXPECTED_CURRENT, ("indicator_code", "unit_id", "period", "dims"), _COMPARED
)
_LATEST_DIFFERENCES = _differences(
    "observation_latest",
    f"SELECT DISTINCT ON (indicator_code, unit_id, dims) * FROM ({_EXPECTED_CURRENT}) AS c"
    " ORDER BY indicator_code, unit_id, dims, period DESC",
    ("indicator_code", "unit_id", "dims"),
    (*_COMPARED, "period"),
)


async def verify_served(conn: asyncpg.Connection) -> str | None:
    """Check what the API serves against the audited history; None, or the differences in one line.

    Run it in the same REPEATABLE READ snapshot as ``verify_chain``, so a report accepted meanwhile
    is seen whole or not at all.
    """
    rows = await conn.fetch(_UNCOVERED)
    if rows:
        named = "; ".join(f"observation_revision {r['id']} ({_key(r)})" for r in rows)
        return f"{_count(rows, 'revision')} covered by no audit entry (added outside the audited paths): {named}"
    for table, query in (("observation_current", _CURRENT_DIFFERENCES), ("observation_latest", _LATEST_DIFFERENCES)):
        rows = await conn.fetch(query)
        if rows:
            named = "; ".join(_difference(r) for r in rows)
            return f"{table} differs from the revisions at {_count(rows, 'key')}: {named}"
    return None


def _count(rows: list[asyncpg.Record], noun: str) -> str:
    total = rows[0]["total"]
    more = f" (the first {len(rows)} named)" if total > len(rows) else ""
    return f"{total} {noun}{'s' if total != 1 else ''}{more}"


def _key(row: asyncpg.Record) -> str:
    unit = f"unit {row['unit_code']} (id {row['unit_id']})"
    return f"{row['indicator_code']}, {unit}, {row['period']}, {row['dims'] or 'total'}"


def _difference(row: asyncpg.Record) -> str:
    if row["served"] is None:
        return f"{_key(row)} is missing, revision {row['expected_revision']} says {row['expected']} (deleted)"
    if row["expected"] is None:
        served = f"{row['served']} (revision {row['served_revision']})"
        return f"{_key(row)} serves {served}, which no current revision backs"
    if (row["served"], row["served_revision"]) == (row["expected"], row["expected_revision"]):
        return f"{_key(row)} differs from revision {row['expected_revision']} in its status, provenance or period"
    return (
        f"{_key(row)} serves {row['served']} (revision {row['served_revision']}),"
        f" revision {row['expected_revision']} says {row['expected']}"
    )
