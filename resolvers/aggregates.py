"""One value for any unit and period, computed by the indicator's rule (migration 0005)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from resolvers.queryable import Queryable


@dataclass(frozen=True, slots=True)
class Aggregate:
    value: Decimal | None
    status: str | None
    stored_parts: int


_SELECT_AGGREGATE = "SELECT value, status, stored_parts FROM aggregate_observation($1, $2, $3, $4)"


async def fetch_aggregate(db: Queryable, indicator: str, unit_id: int, period: str, dims: str) -> Aggregate:
    """The stored value, or one derived from its parts; value None when parts are incomplete."""
    row = await db.fetchrow(_SELECT_AGGREGATE, indicator, unit_id, period, dims)
    if row is None or row["value"] is None:
        return Aggregate(None, None, 0)
    return Aggregate(row["value"], row["status"], row["stored_parts"])
