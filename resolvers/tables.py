"""Bulk shapes for dashboards: a table (indicators x units, one period) and series (units x periods).

PostgreSQL builds the JSON of the whole block, so values keep their exact decimal digits and
Python never touches them one by one: the executor passes the block through as one opaque value.
Provenance of a cell is ``submission:<id>``, ``source:<name>`` or ``computed:<parts>`` (derived
by the indicator's rule from that many stored observations); a missing cell is null throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date

from nrhub.resolvers.errors import SourceUnavailable
from nrhub.resolvers.indicators import Indicator
from nrhub.resolvers.queryable import Queryable
from nrhub.resolvers.sources import reads
from nrhub.resolvers.sources.loaders import SourceLoaders

_PROVENANCE = """CASE WHEN {t}.submission_id IS NOT NULL THEN 'submission:' || {t}.submission_id
                      WHEN {t}.source IS NOT NULL THEN 'source:' || {t}.source END"""

_TABLE = """{with_}
SELECT coalesce(json_agg(json_build_object(
           'unit', u.code, 'values', r.vals, 'periods', r.pers, 'statuses', r.sts, 'provenance', r.prov)
       ORDER BY uu.ord), '[]')::text
FROM unnest($2::int[]) WITH ORDINALITY AS uu(id, ord)
JOIN admin_unit u ON u.id = uu.id
CROSS JOIN LATERAL (
    -- A row with no readable column is empty arrays, never null (json_agg of no rows is null).
    SELECT coalesce(json_agg({value} ORDER BY i.ord), '[]') AS vals,
           coalesce(json_agg({period_of} ORDER BY i.ord), '[]') AS pers,
           coalesce(json_agg({status} ORDER BY i.ord), '[]') AS sts,
           coalesce(json_agg({provenance} ORDER BY i.ord), '[]') AS prov
    FROM unnest($1::text[]) WITH ORDINALITY AS i(code, ord)
    LEFT JOIN {source} v ON v.indicator_code = i.code AND v.unit_id = uu.id AND v.dims = '' {period}{computed}
) AS r
"""
_STORED = {
    "with_": "",
    "value": "v.value",
    "period_of": "v.period",
    "status": "v.status",
    "provenance": _PROVENANCE.format(t="v"),
    "computed": "",
}
# Rates (docs/api.md, "Rates"): a column named in $4 whose cell is not stored (or, for the latest,
# stored for an earlier period than its components reach) is computed by aggregate_observation, the
# function behind the aggregate field, and marked 'computed:<parts>' as lineage-derived cells are.
# Only tables with such a column use these statements; the others' statements stay as they were.
_COMPUTED = {
    "value": "coalesce(a.value, v.value)",
    "period_of": "coalesce(a.period, v.period)",
    "status": "coalesce(a.status, v.status)",
    "provenance": f"coalesce('computed:' || a.stored_parts, {_PROVENANCE.format(t='v')})",
}
# The condition stands in an OFFSET 0 subquery whose WHERE names outer columns only: PostgreSQL tests
# it once before calling the function, instead of after as it would once the subquery is merged.
_RATE_FOR_PERIOD = """
    LEFT JOIN LATERAL (
        SELECT $3::text AS period, a.value, a.status, a.stored_parts
        FROM aggregate_observation(i.code, uu.id, $3, '') AS a
        WHERE v.value IS NULL AND i.code = ANY($4::text[])
        OFFSET 0
    ) AS a ON a.value IS NOT NULL"""
# The latest: the rates whose components reach a later period than the rate's own latest (or any,
# when it has none) are computed first, for the whole table at once; usually there are none.
_RATE_PERIODS = """WITH computed AS MATERIALIZED (
    SELECT c.indicator_code, c.unit_id, c.period, a.value, a.status, a.stored_parts
    FROM latest_rates_to_compute($4::text[], $2::int[]) AS c
    CROSS JOIN LATERAL aggregate_observation(c.indicator_code, c.unit_id, c.period, '') AS a
    WHERE a.value IS NOT NULL
)"""
_RATE_LATEST = """
    LEFT JOIN computed a ON a.indicator_code = i.code AND a.unit_id = uu.id"""
# The latest period of every series is kept current on write (observation_latest), so the
# dashboard's default read is a primary-key lookup per cell, never a search of history.
_TABLE_LATEST = _TABLE.format(**_STORED, source="observation_latest", period="AND $3::text IS NULL")
_TABLE_PERIOD = _TABLE.format(**_STORED, source="observation_current", period="AND v.period = $3")
_TABLE_LATEST_RATES = _TABLE.format(
    **_COMPUTED, with_=_RATE_PERIODS, source="observation_latest", period="AND $3::text IS NULL", computed=_RATE_LATEST
)
_TABLE_PERIOD_RATES = _TABLE.format(
    **_COMPUTED, with_="", source="observation_current", period="AND v.period = $3", computed=_RATE_FOR_PERIOD
)

# Cells of a unit for periods that ended before it existed are derived through the lineage of
# the units it was formed from (a 2025 province over 2020-2025), when derive is on.
_SERIES = """
SELECT coalesce(json_agg(json_build_object(
           'unit', u.code, 'values', r.vals, 'statuses', r.sts, 'provenance', r.prov)
       ORDER BY uu.ord), '[]')::text
FROM unnest($2::int[]) WITH ORDINALITY AS uu(id, ord)
JOIN admin_unit u ON u.id = uu.id
CROSS JOIN LATERAL (
    SELECT json_agg(coalesce(c.value, a.value) ORDER BY p.ord) AS vals,
           json_agg(coalesce(c.status, a.status) ORDER BY p.ord) AS sts,
           json_agg(coalesce({provenance}, 'computed:' || a.stored_parts)
                    ORDER BY p.ord) AS prov
    FROM unnest($3::text[]) WITH ORDINALITY AS p(period, ord)
    LEFT JOIN observation_current c
           ON c.indicator_code = $1 AND c.unit_id = uu.id AND c.period = p.period AND c.dims = $4
    LEFT JOIN LATERAL (
        SELECT * FROM aggregate_observation($1, uu.id, p.period, $4)
        WHERE c.value IS NULL AND {computed}
        -- OFFSET 0 keeps this subquery from being merged into the outer query, where PostgreSQL
        -- would call the function for every cell before applying the WHERE (measured: 220 ms of
        -- server time for a 100 x 60 series where every cell is stored).
        OFFSET 0
    ) AS a ON true
) AS r
"""
_SERIES_STORED = _SERIES.format(
    provenance=_PROVENANCE.format(t="c"), computed="$5 AND period_end(p.period) < u.valid_from"
)
# A rate the caller may have computed: every cell not stored, the earlier ones through the lineage
# only with derive ($5), as for any indicator.
_SERIES_RATES = _SERIES.format(
    provenance=_PROVENANCE.format(t="c"), computed="($5 OR period_end(p.period) >= u.valid_from)"
)


async def fetch_table(
    db: Queryable,
    indicators: Sequence[str | None],
    unit_ids: Sequence[int],
    period: str | None,
    rates: Sequence[str] = (),
) -> str:
    """JSON rows ``[{unit, values, periods, statuses, provenance}]``, one per unit, columns in order.

    ``rates``: the columns (rates) whose cells are computed from their components where the rate
    is not stored; none named, none computed.
    """
    if not rates:
        sql = _TABLE_LATEST if period is None else _TABLE_PERIOD
        block: str = await db.fetchval(sql, list(indicators), list(unit_ids), period)
        return block
    sql = _TABLE_LATEST_RATES if period is None else _TABLE_PERIOD_RATES
    block = await db.fetchval(sql, list(indicators), list(unit_ids), period, list(rates))
    return block


async def fetch_table_with_sources(
    db: Queryable,
    sources: SourceLoaders,
    codes: Sequence[str],
    federated: Sequence[tuple[int, Indicator]],
    units: Sequence[reads.Unit],
    period: str | None,
    today: date,
    rates: Sequence[str] = (),
) -> tuple[str, list[SourceUnavailable]]:
    """The table with the ``federated`` columns (position, indicator) answered by their sources.

    The hub's own columns and the sources are read concurrently; a source's stored leftovers in
    the hub's tables never show, and a failing source leaves its cells null (the errors returned).
    """
    answered_elsewhere = {indicator.code for _, indicator in federated}
    stored = [None if code in answered_elsewhere else code for code in codes]
    unit_ids = [unit.id for unit in units]
    block, (found, problems) = await asyncio.gather(
        fetch_table(db, stored, unit_ids, period, rates),
        reads.table_cells(sources, federated, units, period, today),
    )
    return reads.merge_table(block, found, unit_ids), problems


async def fetch_series(
    db: Queryable,
    indicator: str,
    unit_ids: Sequence[int],
    periods: Sequence[str],
    dims: str,
    *,
    derive: bool,
    rate: bool = False,
) -> str:
    """JSON rows ``[{unit, values, statuses, provenance}]``, one per unit, one cell per period;
    with ``rate``, every cell not stored is computed from the rate's components."""
    sql = _SERIES_RATES if rate else _SERIES_STORED
    block: str = await db.fetchval(sql, indicator, list(unit_ids), list(periods), dims, derive)
    return block
