"""One value for any unit and period, computed by the indicator's rule (migrations 0005 and 0008).

Where the values live decides where the rule runs: inside PostgreSQL for the hub's own indicators
(``aggregate_observation``, one statement), over the source's answers for an indicator a source
serves (resolvers/sources/aggregate.py). A rate combines its numerator and denominator, each from
wherever it lives.
"""

from __future__ import annotations

from resolvers.aggregate_rule import NOTHING, Aggregate, rate
from resolvers.indicators import Indicator
from resolvers.periods import Period
from resolvers.queryable import Queryable
from resolvers.sources.aggregate import Asked, Place, Rule, aggregate_from_source
from resolvers.sources.loaders import SourceLoaders

_SELECT_AGGREGATE = "SELECT value, status, stored_parts FROM aggregate_observation($1, $2, $3, $4, $5)"
_SELECT_ADDITIVE = "SELECT value, status, stored_parts FROM aggregate_additive($1, $2, $3, $4, $5, $6, $7)"
_SELECT_SOURCES = "SELECT code, source FROM indicator WHERE code = ANY($1::text[])"
LEVELS = ("NATION", "PROVINCE", "DISTRICT", "COMMUNE")  # top to bottom


async def fetch_aggregate(
    db: Queryable,
    sources: SourceLoaders,
    indicator: Indicator,
    unit: Place,
    period: str,
    dims: str,
    *,
    from_level: str | None = None,
) -> Aggregate:
    """The stored value, or one derived from its parts; value None when parts are incomplete.

    With ``from_level``, values stored above that level are ignored, so a province's figure is
    recomputed from its communes (to check it against what the province reported). The caller
    has checked that ``indicator`` is readable and ``unit`` covered; the parts are read under
    that decision, as the aggregate is what is shown.
    """
    skip = LEVELS[: LEVELS.index(from_level)] if from_level else ()
    asked = Asked(indicator.code, unit)
    if indicator.aggregation != "RATIO":
        if indicator.source == "hub":
            return _row(await db.fetchrow(_SELECT_AGGREGATE, indicator.code, unit.id, period, dims, list(skip)))
        rule = Rule(indicator.code, indicator.source, indicator.aggregation, indicator.periodicity)
        return await aggregate_from_source(db, sources, rule, asked, Period.parse(period), dims, frozenset(skip))
    assert indicator.numerator_code and indicator.denominator_code and indicator.ratio_factor is not None
    components = (indicator.numerator_code, indicator.denominator_code)
    where = {r["code"]: r["source"] for r in await db.fetch(_SELECT_SOURCES, list(components))}
    if all(where.get(code) == "hub" for code in components):
        return _row(await db.fetchrow(_SELECT_AGGREGATE, indicator.code, unit.id, period, dims, list(skip)))

    async def summed(code: str) -> Aggregate:
        # A rate's parts are summed at the rate's own periodicity (migration 0005).
        if where.get(code, "hub") == "hub":
            args = (code, "SUM", indicator.periodicity, unit.id, period, dims, list(skip))
            return _row(await db.fetchrow(_SELECT_ADDITIVE, *args))
        rule = Rule(code, where[code], "SUM", indicator.periodicity)
        return await aggregate_from_source(db, sources, rule, asked, Period.parse(period), dims, frozenset(skip))

    # One after the other: ``db`` may be a single connection, which runs one statement at a time.
    numerator = await summed(indicator.numerator_code)
    denominator = await summed(indicator.denominator_code)
    return await rate(db, numerator, denominator, indicator.ratio_factor, indicator.decimals)


def _row(row: object) -> Aggregate:
    if row is None or row["value"] is None:  # type: ignore[index]
        return NOTHING
    return Aggregate(row["value"], row["status"], row["stored_parts"])  # type: ignore[index]
