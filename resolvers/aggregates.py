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


_SELECT_AGGREGATE = "SELECT value, status, stored_parts FROM aggregate_observation($1, $2, $3, $4, $5)"
LEVELS = ("NATION", "PROVINCE", "DISTRICT", "COMMUNE")  # top to bottom


async def fetch_aggregate(
    db: Queryable, indicator: str, unit_id: int, period: str, dims: str, *, from_level: str | None = None
) -> Aggregate:
    """The stored value, or one derived from its parts; value None when parts are incomplete.

    With ``from_level``, values stored above that level are ignored, so a province's figure is
    recomputed from its communes (to check it against what the province reported).
    """
    skip = list(LEVELS[: LEVELS.index(from_level)]) if from_level else []
    row = await db.fetchrow(_SELECT_AGGREGATE, indicator, unit_id, period, dims, skip)
    if row is None or row["value"] is None:
        return Aggregate(None, None, 0)
    return Aggregate(row["value"], row["status"], row["stored_parts"])
