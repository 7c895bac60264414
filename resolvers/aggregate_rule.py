"""The arithmetic of an indicator's aggregation rule, shared by the hub's store and the sources.

``migrations/functions/aggregation.sql`` defines the rule inside PostgreSQL for the hub's own
values; resolvers/sources/aggregate.py follows it over a source's answers. Both meet here: the
rule's names (``Aggregation``), the result, how parts combine (a sum is exact: resolvers.exact; a
mean and a rate are computed and rounded to the indicator's decimals by PostgreSQL, whose numeric
division and ``round`` decide their digits, so both paths give the same ones), and the least final
status of the parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from nrhub.resolvers.queryable import Queryable


class Aggregation(StrEnum):
    """An indicator's rule (``indicator.aggregation``), by the names the SQL functions use too."""

    SUM = "SUM"
    AVERAGE = "AVERAGE"  # a mean, rounded to the indicator's decimals where it is computed
    LAST = "LAST"  # over periods the latest; across units a sum, as a stock is
    NONE = "NONE"  # not combined
    RATIO = "RATIO"  # sum(numerator) / sum(denominator) x factor, rounded to the indicator's decimals


_RANK = {"ESTIMATE": 0, "PRELIMINARY": 1, "OFFICIAL": 2}
_AVERAGES = """
SELECT round(avg(t.value), $3::int) AS value
FROM unnest($1::numeric[], $2::int[]) AS t(value, grp) GROUP BY t.grp ORDER BY t.grp
"""
_RATES = """
SELECT round(t.num * $3::numeric / t.den, $4::int) AS value
FROM unnest($1::numeric[], $2::numeric[]) WITH ORDINALITY AS t(num, den, ord) ORDER BY t.ord
"""


@dataclass(frozen=True, slots=True)
class Aggregate:
    value: Decimal | None
    status: str | None
    stored_parts: int
    source: str | None = None  # the source whose values were combined; None for the hub's own
    stale_age: int | None = None  # seconds, when some part was served stale from the hub's cache


NOTHING = Aggregate(None, None, 0)


def least_final(statuses: Sequence[str]) -> str:
    return min(statuses, key=_RANK.__getitem__)


async def averages(db: Queryable, groups: Sequence[Sequence[Decimal]], decimals: int) -> list[Decimal]:
    """PostgreSQL's ``avg`` of each group rounded to ``decimals`` (half away from zero), in one
    statement: what ``aggregate_additive`` computes for an AVERAGE indicator."""
    if not groups:
        return []
    values = [v for group in groups for v in group]
    tags = [n for n, group in enumerate(groups) for _ in group]
    return [r["value"] for r in await db.fetch(_AVERAGES, values, tags, decimals)]


async def rates(
    db: Queryable, pairs: Sequence[tuple[Aggregate, Aggregate]], factor: Decimal, decimals: int
) -> list[Aggregate]:
    """sum(numerator) / sum(denominator) x factor for each pair, rounded as ``aggregate_observation`` rounds it."""
    computable = [n for n, (num, den) in enumerate(pairs) if num.value is not None and den.value not in (None, 0)]
    if not computable:
        return [NOTHING] * len(pairs)
    numerators = [pairs[n][0].value for n in computable]
    denominators = [pairs[n][1].value for n in computable]
    values = [r["value"] for r in await db.fetch(_RATES, numerators, denominators, factor, decimals)]
    results = [NOTHING] * len(pairs)
    for n, value in zip(computable, values, strict=True):
        num, den = pairs[n]
        assert num.status is not None and den.status is not None
        ages = [a for a in (num.stale_age, den.stale_age) if a is not None]
        results[n] = Aggregate(
            value,
            least_final([num.status, den.status]),
            num.stored_parts + den.stored_parts,
            num.source or den.source,
            max(ages) if ages else None,
        )
    return results
