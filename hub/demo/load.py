"""``nrhub demo load``: reference data, synthetic communes, regimes and observations, idempotently.

Observations are bulk-loaded with COPY into a temporary staging table and moved into the
append-only history only for keys that have no value yet, so a second load adds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg

from nrhub.auth.operator_errors import OperatorError
from nrhub.demo.reference import indicator_rows, load_reference
from nrhub.demo.regimes import load_regimes
from nrhub.demo.rules import load_rules
from nrhub.demo.synthetic import Geography, Row, Unit, generate
from nrhub.resolvers.audit import SYSTEM, append_entry, revision_range_digest
from nrhub.resolvers.catalogue_admin import catalogue_rows, last_seal, seal, unsealed

COMMUNES_PER_PROVINCE = {"small": 6, "large": 100}
DEMO_SOURCE = "demo-synthetic"
_CHUNK_ROWS = 250_000


class DemoScaleMismatch(OperatorError):
    """The database already holds the demo set at another scale."""


_INSERT_COMMUNES = """
INSERT INTO admin_unit (code, name_vi, name_en, level, kind, parent_id, valid_from, legal_basis,
                        synthetic)
SELECT p.code || lpad(n::text, 3, '0'),
       'Xã mẫu ' || n || ', ' || p.name_vi,
       'Synthetic commune ' || n || ', ' || p.name_en,
       'COMMUNE', 'commune', p.id, p.valid_from, 'synthetic demo unit, not an official commune', true
FROM admin_unit p CROSS JOIN generate_series(1, $1) AS n
WHERE p.level = 'PROVINCE' AND p.valid_to IS NULL
ON CONFLICT (code, valid_from) DO NOTHING
"""

_STAGE = """
CREATE TEMPORARY TABLE demo_stage (
    indicator_code text, unit_id integer, period text, dims text, value numeric, status text
) ON COMMIT DROP
"""
_MOVE = """
INSERT INTO observation_revision (indicator_code, unit_id, period, dims, value, status, source,
                                  recorded_by)
SELECT s.indicator_code, s.unit_id, s.period, s.dims, s.value, s.status, $1, 'nrhub demo load'
FROM demo_stage s
WHERE NOT EXISTS (
    SELECT 1 FROM observation_current c
    WHERE c.indicator_code = s.indicator_code AND c.unit_id = s.unit_id
      AND c.period = s.period AND c.dims = s.dims)
"""


async def load_demo(conn: asyncpg.Connection, *, scale: str = "small") -> dict[str, object]:
    """Load (or complete) the demo set; returns counts for the operator."""
    started = time.monotonic()
    per_province = COMMUNES_PER_PROVINCE[scale]
    async with conn.transaction():
        await load_reference(conn)
        existing = await conn.fetchval(
            "SELECT max(substr(code, 3)::int) FROM admin_unit WHERE level = 'COMMUNE' AND synthetic"
        )
        if existing is not None and existing != per_province:
            other = next((k for k, v in COMMUNES_PER_PROVINCE.items() if v == existing), "another")
            raise DemoScaleMismatch(
                f"the database holds the {other} demo set; load the {scale} set into an empty "
                "database (another HUB_DATA_DIR or HUB_DATABASE_URL)"
            )
        await conn.execute(_INSERT_COMMUNES, per_province)
        await load_regimes(conn)
        await load_rules(conn)
        # The catalogue as loaded is what `nrhub audit verify` holds it to from now on.
        sealed = await last_seal(conn)
        if sealed is None or unsealed(sealed, await catalogue_rows(conn)):
            await seal(conn, SYSTEM, f"demo:{scale}", now=datetime.now(UTC))
    geo = await _geography(conn)
    rows = generate(indicator_rows(), geo, large=scale == "large")
    added = 0
    for chunk in _chunks(rows, _CHUNK_ROWS):
        async with conn.transaction():
            await conn.execute(_STAGE)
            await conn.copy_records_to_table("demo_stage", records=chunk)
            before = await conn.fetchval(_LAST_REVISION)
            status = await conn.execute(_MOVE, DEMO_SOURCE)
            moved = int(status.split()[-1])
            added += moved
            if moved:
                await _audit_load(conn, before + 1, await conn.fetchval(_LAST_REVISION), moved, scale)
    await conn.execute("ANALYZE")
    totals = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM admin_unit) AS units,"
        " (SELECT count(*) FROM indicator) AS indicators,"
        " (SELECT count(*) FROM regime) AS regimes,"
        " (SELECT count(*) FROM observation_current) AS observations"
    )
    return {**dict(totals), "observations added": added, "seconds": round(time.monotonic() - started, 1)}


_LAST_REVISION = "SELECT coalesce(max(id), 0) FROM observation_revision"


async def _audit_load(conn: asyncpg.Connection, first: int, last: int, rows: int, scale: str) -> None:
    """One audit entry per loaded chunk, with a digest of its rows: an edited value shows."""
    digest = await revision_range_digest(conn, first, last, DEMO_SOURCE)
    after = {"revision_range": [first, last], "source": DEMO_SOURCE, "rows": rows, "revision_digest": digest}
    await append_entry(conn, SYSTEM, "observations.load", f"demo:{scale}", after=after, at=datetime.now(UTC))


async def _geography(conn: asyncpg.Connection) -> Geography:
    rows = await conn.fetch(
        """
        SELECT u.id, u.code, u.level, p.code AS parent_code, u.valid_to IS NULL AS current
        FROM admin_unit u LEFT JOIN admin_unit p ON p.id = u.parent_id
        ORDER BY u.level, u.code
        """
    )

    def units(level: str, current: bool) -> list[Unit]:
        return [
            Unit(r["id"], r["code"], level, r["parent_code"] if level == "COMMUNE" else None)
            for r in rows
            if r["level"] == level and r["current"] is current
        ]

    (nation,) = units("NATION", True)
    return Geography(nation, units("PROVINCE", False), units("PROVINCE", True), units("COMMUNE", True))


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
