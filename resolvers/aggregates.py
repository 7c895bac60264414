"""Values for any unit and period, computed by the indicator's rule (migrations/functions/aggregation.sql).

Where the values live decides where the rule runs: inside PostgreSQL for the hub's own indicators
(``aggregate_observation``, one statement), over the source's answers for an indicator a source
serves (resolvers/sources/aggregate.py). A rate combines its numerator and denominator, each from
wherever it lives. Many (unit, period) pairs are computed together, as a series needs them.

Who may have a rate computed is decided here too (``rate_withheld``), for every path that
computes one: aggregate, table, series and observationsChanged (docs/api.md, "Rates").
"""

from __future__ import annotations

from collections.abc import Sequence

from nrhub.resolvers.aggregate_rule import NOTHING, Aggregate, Aggregation, rates
from nrhub.resolvers.errors import SourceUnavailable
from nrhub.resolvers.indicators import Indicator
from nrhub.resolvers.observations import Observation, UnitKey
from nrhub.resolvers.periods import Period
from nrhub.resolvers.queryable import Queryable
from nrhub.resolvers.scope import Scope
from nrhub.resolvers.sources.aggregate import Rule, aggregates_from_source
from nrhub.resolvers.sources.loaders import SourceLoaders

_SELECT_AGGREGATES = """
SELECT a.value, a.status, a.stored_parts
FROM unnest($2::int[], $3::text[]) WITH ORDINALITY AS r(unit_id, period, ord),
     LATERAL aggregate_observation($1, r.unit_id, r.period, $4, $5) AS a
ORDER BY r.ord
"""
_SELECT_SUMS = """
SELECT a.value, a.status, a.stored_parts
FROM unnest($2::int[], $3::text[]) WITH ORDINALITY AS r(unit_id, period, ord),
     LATERAL aggregate_additive($1, $4, $5, r.unit_id, r.period, $6, $7) AS a
ORDER BY r.ord
"""
LEVELS = ("NATION", "PROVINCE", "DISTRICT", "COMMUNE")  # top to bottom

# The rates an accepted report changed without storing them: for each (unit, disaggregation) of the
# report that holds a component of a rate asked for, the rate as aggregate_observation computes it,
# unless the rate itself is stored there (then the stored value stands, as table and series show).
# The report's cells name the keys only; no component value leaves this statement.
_SELECT_CHANGED_RATES = """
SELECT DISTINCT ON (i.code, v.unit_id, v.dims)
       i.code AS indicator_code, v.unit_id, s.period, v.dims, a.value, a.status, a.stored_parts
FROM submission s
JOIN submission_value v ON v.submission_id = s.id
JOIN indicator i ON i.code = ANY($2::text[]) AND v.indicator_code IN (i.numerator_code, i.denominator_code)
CROSS JOIN LATERAL aggregate_observation(i.code, v.unit_id, s.period, v.dims) AS a
WHERE s.id = $1 AND v.unit_id = ANY($3::int[]) AND a.value IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM observation_current c WHERE c.indicator_code = i.code
                  AND c.unit_id = v.unit_id AND c.period = s.period AND c.dims = v.dims)
ORDER BY i.code, v.unit_id, v.dims
"""


def rate_withheld(scope: Scope, indicator: Indicator) -> bool:
    """Whether values the hub computes for ``indicator`` are withheld from a caller with ``scope``
    (who may read ``indicator`` itself): yes for a rate (RATIO) of whose two components the caller
    may read exactly one, since the rate and that component give the other away (numerator = rate x
    denominator / factor). Both components or neither: computed. A rate stored as such is a reported
    figure, shown under the rate's grant alone (docs/api.md, "Rates")."""
    if indicator.aggregation != Aggregation.RATIO:
        return False
    assert indicator.numerator_code and indicator.denominator_code
    return scope.may_read(indicator.numerator_code) != scope.may_read(indicator.denominator_code)


def rate_in_database(scope: Scope, indicator: Indicator) -> bool:
    """Whether table and series compute ``indicator`` for this caller inside PostgreSQL: a rate
    of the hub's own, with both components in the hub's store, that the caller may have computed."""
    return (
        indicator.aggregation == Aggregation.RATIO
        and indicator.source == "hub"
        and (indicator.numerator_source or "hub") == (indicator.denominator_source or "hub") == "hub"
        and not rate_withheld(scope, indicator)
    )


async def list_changed_rates(
    db: Queryable, submission_id: int, indicators: Sequence[str], unit_ids: Sequence[int]
) -> list[tuple[Observation, int]]:
    """Each rate in ``indicators`` (rates the caller may have computed) whose components the
    accepted report ``submission_id`` changed, as computed now, with the stored values it combines."""
    if not indicators:
        return []
    rows = await db.fetch(_SELECT_CHANGED_RATES, submission_id, list(indicators), list(unit_ids))
    return [
        (
            Observation(
                None, r["indicator_code"], r["unit_id"], r["period"], r["dims"], r["value"], r["status"], None, None
            ),
            r["stored_parts"],
        )
        for r in rows
    ]


async def fetch_aggregate(
    db: Queryable,
    sources: SourceLoaders,
    indicator: Indicator,
    unit: UnitKey,
    period: str,
    dims: str,
    *,
    from_level: str | None = None,
) -> Aggregate:
    """The stored value, or one derived from its parts; value None when parts are incomplete.

    With ``from_level``, values stored above that level are ignored, so a province's figure is
    recomputed from its communes (to check it against what the province reported).
    """
    (found,) = await fetch_aggregates(db, sources, indicator, [(unit, period)], dims, from_level=from_level)
    return found


async def fetch_aggregates(
    db: Queryable,
    sources: SourceLoaders,
    indicator: Indicator,
    pairs: Sequence[tuple[UnitKey, str]],
    dims: str,
    *,
    from_level: str | None = None,
) -> list[Aggregate]:
    """``fetch_aggregate`` for each (unit, period), in order. The caller has checked that
    ``indicator`` is readable and every unit covered; the parts are read under that decision, as
    the aggregate is what is shown."""
    if not pairs:
        return []
    skip = list(LEVELS[: LEVELS.index(from_level)]) if from_level else []
    if indicator.aggregation != Aggregation.RATIO:
        if indicator.source == "hub":
            return await _in_database(db, _SELECT_AGGREGATES, indicator.code, pairs, dims, skip)
        aggregation = Aggregation(indicator.aggregation)
        rule = Rule(indicator.code, indicator.source, aggregation, indicator.periodicity, indicator.decimals)
        return await aggregates_from_source(db, sources, rule, indicator.code, pairs, dims, skip)
    assert indicator.numerator_code and indicator.denominator_code and indicator.ratio_factor is not None
    numerator = (indicator.numerator_code, indicator.numerator_source or "hub")
    denominator = (indicator.denominator_code, indicator.denominator_source or "hub")
    if numerator[1] == denominator[1] == "hub":
        return await _in_database(db, _SELECT_AGGREGATES, indicator.code, pairs, dims, skip)

    async def summed(code: str, source: str) -> list[Aggregate]:
        # A rate's parts are summed at the rate's own periodicity (aggregate_observation).
        if source == "hub":
            sums = (Aggregation.SUM.value, indicator.periodicity, dims, skip)
            return await _in_database(db, _SELECT_SUMS, code, pairs, *sums)
        rule = Rule(code, source, Aggregation.SUM, indicator.periodicity, indicator.decimals)
        return await aggregates_from_source(db, sources, rule, indicator.code, pairs, dims, skip)

    # One after the other: ``db`` may be a single connection, which runs one statement at a time.
    numerators = await summed(*numerator)
    denominators = await summed(*denominator)
    pairs_of_sums = list(zip(numerators, denominators, strict=True))
    return await rates(db, pairs_of_sums, indicator.ratio_factor, indicator.decimals)


async def _in_database(
    db: Queryable, statement: str, code: str, pairs: Sequence[tuple[UnitKey, str]], *args: object
) -> list[Aggregate]:
    rows = await db.fetch(statement, code, [u.id for u, _ in pairs], [p for _, p in pairs], *args)
    return [NOTHING if r["value"] is None else Aggregate(r["value"], r["status"], r["stored_parts"]) for r in rows]


async def before_existence(
    db: Queryable,
    sources: SourceLoaders,
    indicator: Indicator,
    units: Sequence[UnitKey],
    periods: Sequence[str],
    dims: str,
) -> tuple[dict[tuple[int, str], Aggregate], list[SourceUnavailable]]:
    """A series' cells for periods that ended before their unit existed, through the units it was
    formed from (what the hub's SQL series does for its own indicators), keyed (unit id, period).
    A source that cannot answer leaves them null, with its error for the caller."""
    pairs = [(unit, p) for unit in units for p in periods if Period.parse(p).end < unit.valid_from]
    try:
        found = await fetch_aggregates(db, sources, indicator, pairs, dims)
    except SourceUnavailable as exc:
        return {}, [exc]
    return {(unit.id, p): a for (unit, p), a in zip(pairs, found, strict=True) if a.value is not None}, []
