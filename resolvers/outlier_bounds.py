"""A regime's outlier method, and the min-max bounds generated for it (migration 0019).

Each regime compares a report's values with the unit's own history in one of three ways
(``OUTLIER_METHODS``): the modified z-score computed on each check (Z_SCORE, the default), bounds
generated beforehand and stored (MIN_MAX), or not at all (NONE). An administrator generates a
regime's bounds (``generate_bounds``) for every cell of its form and the units of its reporters, or
one unit: that replaces the bounds of those units, audited with how many cells got bounds and how
many had too short a history. Reading them goes through the caller's grants, as observations do:
they are figures of the history they summarise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput, NotFound
from nrhub.resolvers.hub_time import VIETNAM
from nrhub.resolvers.outliers import HISTORY, minmax_bounds
from nrhub.resolvers.scope import Scope
from nrhub.resolvers.units import fetch_unit

OUTLIER_METHODS = ("Z_SCORE", "MIN_MAX", "NONE")  # migration 0019 checks the same three
DEFAULT_METHOD = "Z_SCORE"
DEFAULT_K = Decimal(3)
LARGEST_K = Decimal(10)


@dataclass(frozen=True, slots=True)
class StoredBounds:
    regime_code: str
    indicator_code: str
    unit_id: int
    unit_code: str
    dims: str
    min_value: Decimal
    max_value: Decimal
    mean: Decimal
    std_dev: Decimal
    k: Decimal
    history_size: int
    first_period: str
    last_period: str
    generated_by: str
    generated_at: datetime


@dataclass(frozen=True, slots=True)
class Generation:
    regime_code: str
    unit_code: str | None  # None: every reporter's unit
    k: Decimal
    cells: int  # that got bounds
    skipped: int  # cells whose history is too short
    generated_at: datetime


_SELECT_METHOD = "SELECT coalesce((SELECT method FROM outlier_method WHERE regime_code = $1), $2)"
_UPSERT_METHOD = """
INSERT INTO outlier_method (regime_code, method) VALUES ($1, $2)
ON CONFLICT (regime_code) DO UPDATE SET method = EXCLUDED.method
"""
# The units a regime's reports are of: each reporter's unit, the nation for an agency without one
# (as opening a draft decides, resolvers/submissions.py).
_SELECT_REPORTER_UNITS = """
SELECT DISTINCT coalesce(a.unit_id, (SELECT id FROM admin_unit WHERE level = 'NATION')) AS id
FROM regime_reporter rr JOIN agency a ON a.code = rr.agency_code WHERE rr.regime_code = $1 ORDER BY 1
"""
# The most recent current values of each form cell of regime $1 for each unit $2, oldest first.
_SELECT_HISTORIES = f"""
SELECT ri.indicator_code, u.id AS unit_id, ri.dims, i.decimals, h.history, h.periods
FROM regime_item ri
JOIN indicator i ON i.code = ri.indicator_code
CROSS JOIN unnest($2::int[]) AS u(id)
CROSS JOIN LATERAL (
    SELECT array_agg(r.value ORDER BY r.ends) AS history, array_agg(r.period ORDER BY r.ends) AS periods FROM (
        SELECT c.value, c.period, period_end(c.period) AS ends FROM observation_current c
        WHERE c.indicator_code = ri.indicator_code AND c.unit_id = u.id AND c.dims = ri.dims
        ORDER BY period_end(c.period) DESC LIMIT {HISTORY}
    ) r
) h
WHERE ri.regime_code = $1
ORDER BY 1, 2, 3
"""
_INSERT_BOUNDS = """
INSERT INTO outlier_bounds (regime_code, indicator_code, unit_id, dims, min_value, max_value, mean, std_dev, k,
                            history_size, first_period, last_period, generated_by, generated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""
_COLUMNS = """b.regime_code, b.indicator_code, b.unit_id, u.code AS unit_code, b.dims, b.min_value, b.max_value,
    b.mean, b.std_dev, b.k, b.history_size, b.first_period, b.last_period, b.generated_by, b.generated_at"""
# The bounds of regime $1 (of unit $2 only, unless null) of the readable indicators ($3) and units
# ($4, null: every unit): the caller's grants inside the SQL, and row-level security again.
_SELECT_BOUNDS = f"""
SELECT {_COLUMNS} FROM outlier_bounds b JOIN admin_unit u ON u.id = b.unit_id
WHERE b.regime_code = $1 AND ($2::int IS NULL OR b.unit_id = $2)
  AND b.indicator_code = ANY($3::text[]) AND ($4::int[] IS NULL OR b.unit_id = ANY($4::int[]))
ORDER BY u.code, b.indicator_code, b.dims
"""
# The bounds of the cells (indicator, unit id, dims) asked, under the same grants.
_SELECT_CELL_BOUNDS = f"""
SELECT {_COLUMNS} FROM outlier_bounds b JOIN admin_unit u ON u.id = b.unit_id
JOIN unnest($2::text[], $3::int[], $4::text[]) AS k(indicator_code, unit_id, dims)
  ON k.indicator_code = b.indicator_code AND k.unit_id = b.unit_id AND k.dims = b.dims
WHERE b.regime_code = $1 AND b.indicator_code = ANY($5::text[]) AND ($6::int[] IS NULL OR b.unit_id = ANY($6::int[]))
"""

Key = tuple[str, int, str]  # indicator, unit id, disaggregation


async def outlier_method(db: Any, regime: str) -> str:
    method: str = await db.fetchval(_SELECT_METHOD, regime, DEFAULT_METHOD)
    return method


async def set_outlier_method(conn: asyncpg.Connection, actor: Actor, regime: str, method: str, *, now: datetime) -> str:
    """Choose how the regime's reports are checked for outliers; audited when it changes."""
    if method not in OUTLIER_METHODS:
        raise BadUserInput(f"the outlier method must be one of {', '.join(OUTLIER_METHODS)}")
    await require_regime(conn, regime)
    before = await outlier_method(conn, regime)
    await conn.execute(_UPSERT_METHOD, regime, method)
    if before != method:
        subject = f"outlier_method:{regime}"
        await append_entry(
            conn, actor, "outlier_method.set", subject, before={"method": before}, after={"method": method}, at=now
        )
    return method


async def generate_bounds(
    conn: asyncpg.Connection, actor: Actor, regime: str, *, unit: str | None, k: Decimal, now: datetime
) -> Generation:
    """(Re)generate the regime's bounds for its reporters' units, or ``unit`` only, in the
    caller's transaction; it must read every row of the history (a workflow transaction)."""
    if not (k.is_finite() and 0 < k <= LARGEST_K):
        raise BadUserInput(f"k must be more than 0 and at most {LARGEST_K}")
    await require_regime(conn, regime)
    if unit is None:
        unit_ids = [r["id"] for r in await conn.fetch(_SELECT_REPORTER_UNITS, regime)]
    else:
        unit_ids = [await unit_in_force(conn, unit, now)]
    rows = await conn.fetch(_SELECT_HISTORIES, regime, unit_ids)
    await conn.execute(
        "DELETE FROM outlier_bounds WHERE regime_code = $1 AND unit_id = ANY($2::int[])", regime, unit_ids
    )
    made, by = [], actor.user or actor.client or "unknown"
    for r in rows:
        bounds = minmax_bounds(r["history"] or [], k, r["decimals"])
        if bounds is not None:
            made.append(
                (regime, r["indicator_code"], r["unit_id"], r["dims"], bounds.min_value, bounds.max_value, bounds.mean,
                 bounds.std_dev, k, bounds.periods, r["periods"][0], r["periods"][-1], by, now)
            )  # fmt: skip
    await conn.executemany(_INSERT_BOUNDS, made)
    done = Generation(regime, unit, k, len(made), len(rows) - len(made), now)
    after = {"regime": regime, "unit": unit, "k": k, "cells": done.cells, "skipped": done.skipped}
    await append_entry(conn, actor, "outlier_bounds.generate", f"outlier_bounds:{regime}", after=after, at=now)
    return done


async def list_bounds(db: Any, scope: Scope, regime: str, unit_id: int | None) -> list[StoredBounds]:
    """The regime's stored bounds (of one unit) that the caller may read."""
    rows = await db.fetch(_SELECT_BOUNDS, regime, unit_id, list(scope.indicators), _units(scope))
    return [StoredBounds(**r) for r in rows]


async def bounds_of_cells(db: Any, scope: Scope, regime: str, keys: Sequence[Key]) -> dict[Key, StoredBounds]:
    """The stored bounds of these cells under the regime that the caller may read."""
    if not keys:
        return {}
    rows = await db.fetch(
        _SELECT_CELL_BOUNDS,
        regime,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        list(scope.indicators),
        _units(scope),
    )
    return {(r["indicator_code"], r["unit_id"], r["dims"]): StoredBounds(**r) for r in rows}


async def unit_in_force(db: Any, code: str, now: datetime) -> int:
    """The id of the unit ``code`` in force on ``now``'s date in Vietnam."""
    found = await fetch_unit(db, code, now.astimezone(VIETNAM).date())
    if found is None:
        raise NotFound(f"there is no unit {code} in force today")
    return found.id


async def require_regime(conn: Any, regime: str) -> None:
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM regime WHERE code = $1)", regime):
        raise NotFound(f"there is no regime {regime}")


def _units(scope: Scope) -> list[int] | None:
    return None if scope.unit_ids is None else list(scope.unit_ids)
