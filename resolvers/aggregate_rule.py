"""The arithmetic of an indicator's aggregation rule, shared by the hub's store and the sources.

Migration 0005 defines the rule inside PostgreSQL for the hub's own values; resolvers/sources/
aggregate.py follows it over a source's answers. Both meet here: the result, how parts combine
(a sum is exact; an average and a rate are computed by PostgreSQL, whose numeric division decides
their digits, so both paths give the same ones), and the least final status of the parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from resolvers.queryable import Queryable

_RANK = {"ESTIMATE": 0, "PRELIMINARY": 1, "OFFICIAL": 2}
_AVERAGES = """
SELECT avg(t.value) AS value FROM unnest($1::numeric[], $2::int[]) AS t(value, grp) GROUP BY t.grp ORDER BY t.grp
"""
_RATE = "SELECT round($1::numeric * $2::numeric / $3::numeric, $4::int)"


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


def exact_sum(values: Sequence[Decimal]) -> Decimal:
    """PostgreSQL's numeric sum: exact, whatever the number of digits (Decimal's default rounds at 28)."""
    with localcontext() as context:
        context.prec = 1000
        return sum(values, Decimal(0))


async def averages(db: Queryable, groups: Sequence[Sequence[Decimal]]) -> list[Decimal]:
    """PostgreSQL's ``avg`` of each group, in one statement."""
    values = [v for group in groups for v in group]
    tags = [n for n, group in enumerate(groups) for _ in group]
    return [r["value"] for r in await db.fetch(_AVERAGES, values, tags)]


async def rate(
    db: Queryable, numerator: Aggregate, denominator: Aggregate, factor: Decimal, decimals: int
) -> Aggregate:
    """sum(numerator) / sum(denominator) x factor, rounded as migration 0005 rounds it."""
    if numerator.value is None or denominator.value is None or denominator.value == 0:
        return NOTHING
    assert numerator.status is not None and denominator.status is not None
    value = await db.fetchval(_RATE, numerator.value, factor, denominator.value, decimals)
    ages = [a for a in (numerator.stale_age, denominator.stale_age) if a is not None]
    return Aggregate(
        value,
        least_final([numerator.status, denominator.status]),
        numerator.stored_parts + denominator.stored_parts,
        numerator.source or denominator.source,
        max(ages) if ages else None,
    )
