"""The benchmarked queries: each one's GraphQL document and its anchor, the same rows without GraphQL.

An anchor fetches the rows the hub reads (same tables, same keys) with one asyncpg pool and
encodes a response of the same shape as the hub's with orjson. The in-process "floor" and the
minimal Starlette endpoint (bench/anchor_app.py) run exactly this code, so the only difference
between them is HTTP, and between the Starlette endpoint and the hub only GraphQL and the hub's
own layers.

Decimals are written with their stored digits (``orjson.Fragment(str(d))``), as the hub writes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

# The series: an indicator the large demo stores per commune (hub/demo/synthetic.py COMMUNE_LARGE),
# the 100 synthetic communes of Ho Chi Minh City, 60 months.
SERIES_INDICATOR = "RETAIL"
SERIES_PARENT = "79"
SERIES_FROM, SERIES_TO = "2021-M11", "2026-M10"
POINT = ("RETAIL", "79", "2026-M03")
CATALOGUE_FIRST = 60


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(body: Any) -> bytes:
    """JSON bytes, decimals with their stored digits."""
    return orjson.dumps(body, default=_default)


def _provenance(submission_id: int | None, source: str | None) -> str | None:
    if submission_id is not None:
        return f"submission:{submission_id}"
    return f"source:{source}" if source is not None else None


def months(first: str, last: str) -> list[str]:
    """Monthly SDMX periods from ``first`` to ``last`` inclusive (``2021-M11`` .. ``2026-M10``)."""
    year, month = int(first[:4]), int(first[6:])
    out = []
    while True:
        period = f"{year}-M{month:02d}"
        out.append(period)
        if period == last:
            return out
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


# --- the dashboard table: every indicator x the 34 current provinces, each series' latest period

_TABLE_COLUMNS = "SELECT code, unit_of_measure FROM indicator WHERE code = ANY($1::text[])"
_TABLE_CELLS = """
SELECT u.code AS unit, l.indicator_code, l.period, l.value, l.status, l.submission_id, l.source
FROM admin_unit u
JOIN observation_latest l ON l.unit_id = u.id AND l.dims = '' AND l.indicator_code = ANY($1::text[])
WHERE u.level = 'PROVINCE' AND u.valid_to IS NULL
ORDER BY u.code
"""


async def table(pool: asyncpg.Pool, indicators: list[str]) -> bytes:
    async with pool.acquire() as conn:
        known = {r["code"]: r["unit_of_measure"] for r in await conn.fetch(_TABLE_COLUMNS, indicators)}
        cells = await conn.fetch(_TABLE_CELLS, indicators)
    columns = [c for c in indicators if c in known]
    position = {c: i for i, c in enumerate(columns)}
    width = len(columns)
    rows: list[dict[str, Any]] = []
    by_unit: dict[str, dict[str, Any]] = {}
    for r in cells:
        row = by_unit.get(r["unit"])
        if row is None:
            row = by_unit[r["unit"]] = {
                "unit": r["unit"],
                "values": [None] * width,
                "periods": [None] * width,
                "statuses": [None] * width,
                "provenance": [None] * width,
            }
            rows.append(row)
        i = position[r["indicator_code"]]
        row["values"][i] = r["value"]
        row["periods"][i] = r["period"]
        row["statuses"][i] = r["status"]
        row["provenance"][i] = _provenance(r["submission_id"], r["source"])
    body = {"columns": [{"code": c, "unitOfMeasure": known[c]} for c in columns], "rows": rows}
    return encode({"data": {"table": body}})


# --- a series: one indicator x the communes of one province x 60 months, from observation_current

_SERIES_UNITS = """
SELECT u.id, u.code FROM admin_unit u JOIN admin_unit p ON p.id = u.parent_id
WHERE p.code = $1 AND p.valid_to IS NULL AND u.level = 'COMMUNE' AND u.valid_to IS NULL
ORDER BY u.code
"""
_SERIES_CELLS = """
SELECT unit_id, period, value, status, submission_id, source FROM observation_current
WHERE indicator_code = $1 AND unit_id = ANY($2::int[]) AND period >= $3 AND period <= $4 AND dims = ''
"""


async def series(pool: asyncpg.Pool, indicator: str, parent: str, first: str, last: str) -> bytes:
    periods = months(first, last)
    position = {p: i for i, p in enumerate(periods)}
    width = len(periods)
    async with pool.acquire() as conn:
        units = await conn.fetch(_SERIES_UNITS, parent)
        cells = await conn.fetch(_SERIES_CELLS, indicator, [u["id"] for u in units], first, last)
    by_id = {
        u["id"]: {"unit": u["code"], "values": [None] * width, "statuses": [None] * width, "provenance": [None] * width}
        for u in units
    }
    for r in cells:
        row, i = by_id[r["unit_id"]], position[r["period"]]
        row["values"][i] = r["value"]
        row["statuses"][i] = r["status"]
        row["provenance"][i] = _provenance(r["submission_id"], r["source"])
    return encode({"data": {"series": {"periods": periods, "rows": list(by_id.values())}}})


# --- the nested catalogue: indicators with their field, responsible agency and dimensions

_CATALOGUE = """
SELECT i.code, i.name_en, f.code AS field_code, f.name_en AS field_name_en,
       a.code AS agency_code, a.name_en AS agency_name_en
FROM indicator i
JOIN indicator_field f ON f.code = i.field
JOIN agency a ON a.code = i.responsible_agency
WHERE i.sensitivity = 'PUBLIC'
ORDER BY i.code LIMIT $1
"""
_CATALOGUE_DIMENSIONS = """
SELECT d.indicator_code, d.dimension_code,
       array_agg(v.code ORDER BY v.code <> '_T', v.code) AS vals
FROM indicator_dimension d JOIN dimension_value v ON v.dimension_code = d.dimension_code
WHERE d.indicator_code = ANY($1::text[])
GROUP BY d.indicator_code, d.position, d.dimension_code
ORDER BY d.indicator_code, d.position
"""


async def catalogue(pool: asyncpg.Pool, first: int) -> bytes:
    async with pool.acquire() as conn:
        indicators = await conn.fetch(_CATALOGUE, first)
        dims = await conn.fetch(_CATALOGUE_DIMENSIONS, [r["code"] for r in indicators])
    by_code: dict[str, list[dict[str, Any]]] = {r["code"]: [] for r in indicators}
    for d in dims:
        by_code[d["indicator_code"]].append({"code": d["dimension_code"], "values": [{"code": v} for v in d["vals"]]})
    edges = [
        {
            "node": {
                "code": r["code"],
                "nameEn": r["name_en"],
                "field": {"code": r["field_code"], "nameEn": r["field_name_en"]},
                "responsibleAgency": {"code": r["agency_code"], "nameEn": r["agency_name_en"]},
                "dimensions": by_code[r["code"]],
            }
        }
        for r in indicators
    ]
    return encode({"data": {"indicators": {"edges": edges}}})


# --- a point lookup: one current value by its primary key

_POINT = """
SELECT c.value, c.status, c.period FROM admin_unit u
JOIN observation_current c ON c.indicator_code = $1 AND c.unit_id = u.id AND c.period = $3 AND c.dims = ''
WHERE u.code = $2 AND u.valid_to IS NULL
"""


async def point(pool: asyncpg.Pool, indicator: str, unit: str, period: str) -> bytes:
    row = await pool.fetchrow(_POINT, indicator, unit, period)
    found = None if row is None else {"value": row["value"], "status": row["status"], "period": row["period"]}
    return encode({"data": {"observation": found}})


# --- what the benchmark runs


@dataclass(frozen=True)
class Query:
    """One benchmarked query: its GraphQL document, its anchor, and whether it has a target."""

    name: str
    graphql: str
    anchor: Callable[[asyncpg.Pool], Awaitable[bytes]]
    targeted: bool  # held to "p50 within 1.5x of the minimal Starlette endpoint"


async def indicator_codes(pool: asyncpg.Pool) -> list[str]:
    """Every indicator the hub stores, in code order (the dashboard asks for all of them). Indicators a
    federated source serves are left out: the benchmarked hub runs without sources, and the anchors
    read only the hub's own tables."""
    return [r["code"] for r in await pool.fetch("SELECT code FROM indicator WHERE source = 'hub' ORDER BY code")]


def build_queries(indicators: list[str]) -> dict[str, Query]:
    codes = ", ".join(f'"{c}"' for c in indicators)
    indicator, unit, period = POINT
    return {
        q.name: q
        for q in (
            Query(
                "table",
                f'{{ table(indicators: [{codes}], parent: "VN", level: PROVINCE) '
                "{ columns { code unitOfMeasure } rows } }",
                lambda pool: table(pool, indicators),
                targeted=True,
            ),
            Query(
                "series",
                f'{{ series(indicator: "{SERIES_INDICATOR}", parent: "{SERIES_PARENT}", level: COMMUNE, '
                f'from: "{SERIES_FROM}", to: "{SERIES_TO}") {{ periods rows }} }}',
                lambda pool: series(pool, SERIES_INDICATOR, SERIES_PARENT, SERIES_FROM, SERIES_TO),
                targeted=True,
            ),
            Query(
                "catalogue",
                f"{{ indicators(first: {CATALOGUE_FIRST}) {{ edges {{ node {{ code nameEn field {{ code nameEn }} "
                "responsibleAgency { code nameEn } dimensions { code values { code } } } } } }",
                lambda pool: catalogue(pool, CATALOGUE_FIRST),
                targeted=False,
            ),
            Query(
                "point",
                f'{{ observation(indicator: "{indicator}", unit: "{unit}", period: "{period}") '
                "{ value status period } }",
                lambda pool: point(pool, indicator, unit, period),
                targeted=True,
            ),
        )
    }
