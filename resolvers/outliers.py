"""Outliers against a unit's own history: the modified z-score (Iglewicz and Hoaglin, 1993).

A reported value x of a cell is compared with the current values of the same cell (indicator, unit,
disaggregation) in the unit's most recent earlier periods, up to ``HISTORY`` of them:

    z = 0.6745 * (x - median) / MAD          MAD = median(|h - median|)

and, where more than half the history is one value (MAD = 0), with the mean absolute deviation:
z = (x - median) / (1.253314 * meanAD). |z| > 3.5 is an outlier, the authors' recommended cut-off;
it needs at least ``MIN_HISTORY`` past periods, and a history without spread (every value equal)
judges nothing. Median and MAD are robust: one earlier outlier does not hide the next, as it
would a mean and standard deviation (DHIS2 offers the same test in its outlier analysis).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

THRESHOLD = 3.5
MIN_HISTORY = 6
HISTORY = 24


@dataclass(frozen=True, slots=True)
class Outlier:
    z: float
    median: Decimal
    periods: int  # how many past periods it was judged against


def outlier(value: Decimal, history: Sequence[Decimal]) -> Outlier | None:
    """The value's score against ``history`` when it is an outlier, else None."""
    if len(history) < MIN_HISTORY:
        return None
    median = statistics.median(history)
    deviations = [abs(h - median) for h in history]
    mad = statistics.median(deviations)
    if mad:
        z = 0.6745 * float(value - median) / float(mad)
    else:
        mean_ad = sum(deviations, Decimal(0)) / len(deviations)
        if not mean_ad:
            return None
        z = float(value - median) / (1.253314 * float(mean_ad))
    return Outlier(z, median, len(history)) if abs(z) > THRESHOLD else None


# The most recent earlier current values of each asked cell, of the readable indicators ($5) and
# units ($6, null: every unit): the caller's grants inside the SQL, as every read applies them, and
# row-level security (migration 0013) applies them again.
_SELECT_HISTORY = f"""
SELECT k.indicator_code, k.unit_id, k.dims, h.history
FROM unnest($1::text[], $2::int[], $3::text[]) AS k(indicator_code, unit_id, dims)
CROSS JOIN LATERAL (
    SELECT array_agg(value) AS history FROM (
        SELECT c.value FROM observation_current c
        WHERE c.indicator_code = k.indicator_code AND c.unit_id = k.unit_id AND c.dims = k.dims
          AND period_end(c.period) < period_end($4)
          AND c.indicator_code = ANY($5::text[]) AND ($6::int[] IS NULL OR c.unit_id = ANY($6::int[]))
        ORDER BY period_end(c.period) DESC LIMIT {HISTORY}
    ) recent
) h
WHERE h.history IS NOT NULL
"""

Key = tuple[str, int, str]  # indicator, unit id, disaggregation


async def fetch_history(
    db: Any, keys: Sequence[Key], period: str, indicators: Sequence[str], unit_ids: Sequence[int] | None
) -> dict[Key, list[Decimal]]:
    """Past current values of each cell before ``period`` that the caller may read."""
    if not keys:
        return {}
    rows = await db.fetch(
        _SELECT_HISTORY,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        period,
        list(indicators),
        None if unit_ids is None else list(unit_ids),
    )
    return {(r["indicator_code"], r["unit_id"], r["dims"]): list(r["history"]) for r in rows}
