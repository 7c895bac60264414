"""Operators' changes to the catalogue, audited, and the catalogue's seal that ``audit verify`` checks.

What an indicator means, who may read it and where its values come from (sensitivity, source,
aggregation), and the units and dimension values figures are keyed by, change only here: each
changed row gets an audit entry with its state before and after, in the caller's transaction.

Every change ends with a seal: an audit entry holding a digest of every catalogue row. ``nrhub
audit verify`` recomputes the digests and names each row added, changed or removed since the last
seal, so a catalogue edited by SQL (an indicator made PUBLIC, a source repointed) shows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput, NotFound

SEAL_ACTION = "catalogue.seal"

# Each sealed table, and how its rows are named in the seal and in verify's findings.
SEALED = {
    "indicator_field": "code",
    "indicator": "code",
    "indicator_dimension": "indicator_code || '/' || dimension_code",
    "dimension": "code",
    "dimension_value": "dimension_code || '=' || code",
    "admin_unit": "code || '@' || valid_from",
    "unit_lineage": "old_unit_id || '>' || new_unit_id",
    "agency": "code",
}

# What an operator may change of an indicator; the code and the derived search text stay.
INDICATOR_COLUMNS = {
    "name_vi",
    "name_en",
    "definition",
    "field",
    "unit_of_measure",
    "value_type",
    "decimals",
    "periodicity",
    "aggregation",
    "numerator_code",
    "denominator_code",
    "ratio_factor",
    "responsible_agency",
    "sensitivity",
    "source",
    "source_note",
}
UNIT_COLUMNS = {"name_vi", "name_en", "kind", "valid_to", "legal_basis"}
DIMENSION_VALUE_COLUMNS = {"name_vi", "name_en"}


async def catalogue_rows(conn: asyncpg.Connection) -> dict[str, dict[str, str]]:
    """Every sealed row's digest (md5 of its text form), by table and row name."""
    digests: dict[str, dict[str, str]] = {}
    for table, name in SEALED.items():
        rows = await conn.fetch(f"SELECT ({name})::text AS name, md5(t::text) AS digest FROM {table} t")
        digests[table] = {r["name"]: r["digest"] for r in rows}
    return digests


async def seal(
    conn: asyncpg.Connection, actor: Actor, reason: str, *, now: datetime, unsealed: list[str] | None = None
) -> int:
    """Record the catalogue as it now is: the entry verify compares the catalogue against.

    ``unsealed`` names rows changed since the last seal without an audited change of their own
    (a migration, SQL by hand), so that sealing them over shows in the trail.
    """
    after: dict[str, Any] = {"rows": await catalogue_rows(conn)}
    if unsealed:
        after["unsealed"] = unsealed
    return await append_entry(conn, actor, SEAL_ACTION, reason, after=after, at=now)


async def last_seal(conn: asyncpg.Connection) -> dict[str, dict[str, str]] | None:
    """The rows of the latest seal; None before the catalogue was first sealed."""
    return (await _latest_seal(conn))[1]


async def _latest_seal(conn: asyncpg.Connection) -> tuple[int | None, dict[str, dict[str, str]] | None]:
    row = await conn.fetchrow(
        "SELECT seq, (after->'rows')::text AS rows FROM audit_entry WHERE action = $1 ORDER BY seq DESC LIMIT 1",
        SEAL_ACTION,
    )
    # Read as text: the same on any connection, with or without the pool's jsonb codec.
    return (None, None) if row is None else (row["seq"], orjson.loads(row["rows"]))


async def verify_catalogue(conn: asyncpg.Connection) -> tuple[int | None, str | None]:
    """The latest seal's entry (None: never sealed) and the rows changed since, in one line (None: none)."""
    seq, sealed = await _latest_seal(conn)
    if sealed is None:
        return None, None
    changed = unsealed(sealed, await catalogue_rows(conn))
    if not changed:
        return seq, None
    named = "; ".join(changed[:20]) + (f" (the first 20 of {len(changed)} named)" if len(changed) > 20 else "")
    return seq, (
        f"the catalogue differs from its seal (audit entry {seq}) at {len(changed)} "
        f"row{'s' if len(changed) != 1 else ''}, changed outside `nrhub catalogue import`: {named}"
    )


def unsealed(sealed: dict[str, dict[str, str]], now: dict[str, dict[str, str]]) -> list[str]:
    """Each row added, changed or removed since the seal, as ``table key (what)``."""
    found = []
    for table in SEALED:
        before, after = sealed.get(table, {}), now.get(table, {})
        for key in sorted(before.keys() | after.keys()):
            if key not in after:
                found.append(f"{table} {key} (removed)")
            elif key not in before:
                found.append(f"{table} {key} (added)")
            elif before[key] != after[key]:
                found.append(f"{table} {key} (changed)")
    return found


async def change_indicator(
    conn: asyncpg.Connection, actor: Actor, code: str, changes: dict[str, Any], *, now: datetime
) -> bool:
    """Set some columns of one indicator; False when they already held these values."""
    subject = f"indicator {code}"
    return await _change(conn, actor, "indicator", "code = $1", [code], subject, changes, INDICATOR_COLUMNS, now)


async def change_unit(
    conn: asyncpg.Connection, actor: Actor, code: str, valid_from: date, changes: dict[str, Any], *, now: datetime
) -> bool:
    """Rename one unit, or end its validity (a unit is never deleted: figures keep pointing at it)."""
    where = "code = $1 AND valid_from = $2"
    return await _change(
        conn, actor, "admin_unit", where, [code, valid_from], f"unit {code}@{valid_from}", changes, UNIT_COLUMNS, now
    )


async def change_dimension_value(
    conn: asyncpg.Connection, actor: Actor, dimension: str, code: str, changes: dict[str, Any], *, now: datetime
) -> bool:
    """Add a value to a dimension, or rename one."""
    unknown = set(changes) - DIMENSION_VALUE_COLUMNS
    if unknown:
        raise BadUserInput(f"dimension value {dimension}={code}: cannot set {', '.join(sorted(unknown))}")
    subject = f"dimension_value {dimension}={code}"
    before = await conn.fetchrow(
        "SELECT * FROM dimension_value WHERE dimension_code = $1 AND code = $2", dimension, code
    )
    if before is None:
        if not {"name_vi", "name_en"} <= set(changes):
            raise BadUserInput(f"{subject} is new: give name_vi and name_en")
        if not await conn.fetchval("SELECT 1 FROM dimension WHERE code = $1", dimension):
            raise NotFound(f"there is no dimension {dimension}")
        after = await _guarded(
            conn,
            subject,
            "INSERT INTO dimension_value (dimension_code, code, name_vi, name_en) VALUES ($1, $2, $3, $4) RETURNING *",
            dimension,
            code,
            changes["name_vi"],
            changes["name_en"],
        )
        await append_entry(conn, actor, "catalogue.dimension_value", subject, after=dict(after), at=now)
        return True
    where = "dimension_code = $1 AND code = $2"
    return await _change(
        conn, actor, "dimension_value", where, [dimension, code], subject, changes, DIMENSION_VALUE_COLUMNS, now
    )


async def _change(
    conn: asyncpg.Connection,
    actor: Actor,
    table: str,
    where: str,
    key: list[Any],
    subject: str,
    changes: dict[str, Any],
    allowed: set[str],
    now: datetime,
) -> bool:
    unknown = set(changes) - allowed
    if unknown:
        raise BadUserInput(f"{subject}: cannot set {', '.join(sorted(unknown))}")
    before = await conn.fetchrow(f"SELECT * FROM {table} WHERE {where} FOR UPDATE", *key)
    if before is None:
        raise NotFound(f"there is no {subject}")
    changed = {column: value for column, value in changes.items() if before[column] != value}
    if not changed:
        return False
    # Column names come from the allowed set above, never from the caller's text.
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changed, start=len(key) + 1))
    after = await _guarded(
        conn, subject, f"UPDATE {table} SET {assignments} WHERE {where} RETURNING *", *key, *changed.values()
    )
    await append_entry(
        conn,
        actor,
        f"catalogue.{table}",
        subject,
        before={c: before[c] for c in changed},
        after={c: after[c] for c in changed},
        at=now,
    )
    return True


async def _guarded(conn: asyncpg.Connection, subject: str, query: str, *args: Any) -> asyncpg.Record:
    """Run a write whose refusal by a constraint is the operator's mistake, said in one line."""
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction goes on to report it
            row = await conn.fetchrow(query, *args)
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
        raise BadUserInput(f"{subject}: {exc.message}") from None  # its first line: no failing row dump
    assert row is not None
    return row
