"""Outliers against a unit's own history: the modified z-score (Iglewicz and Hoaglin, 1993), or
min-max bounds generated from it beforehand (DHIS2's min-max generation).

A reported value x of a cell is compared with the current values of the same cell (indicator, unit,
disaggregation) in the unit's most recent earlier periods, up to ``HISTORY`` of them:

    z = 0.6745 * (x - median) / MAD          MAD = median(|h - median|)

and, where more than half the history is one value (MAD = 0), with the mean absolute deviation:
z = (x - median) / (1.253314 * meanAD). |z| > 3.5 is an outlier, the authors' recommended cut-off;
it needs at least ``MIN_HISTORY`` past periods, and a history without spread (every value equal)
judges nothing. Median and MAD are robust: one earlier outlier does not hide the next, as it
would a mean and standard deviation (DHIS2 offers the same test in its outlier analysis).

Min-max bounds (``minmax_bounds``) are the mean of the cell's most recent values (the same
``MIN_HISTORY`` to ``HISTORY`` periods) plus and minus k population standard deviations, rounded
outward to the indicator's decimals (rounding never narrows them); a history without a negative
value never gets a negative minimum, and one without spread gets bounds equal to its one value.
They are computed when an administrator generates them (resolvers/outlier_bounds.py), stored, and
shown to reviewers, rather than on each check.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from nrhub.resolvers.exact import exact_sum

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


# Enough digits for the mean and deviation of figures of any realistic size; the bounds are then
# rounded to at most six decimals (the most an indicator has, migration 0001).
_STATISTICS = Context(prec=50)
_SHOWN = Decimal("0.000001")  # the mean and deviation as stored beside the bounds


@dataclass(frozen=True, slots=True)
class Bounds:
    min_value: Decimal
    max_value: Decimal
    mean: Decimal  # rounded to six decimals, as shown
    std_dev: Decimal
    periods: int


def minmax_bounds(history: Sequence[Decimal], k: Decimal, decimals: int) -> Bounds | None:
    """mean ± k·σ of ``history`` (σ the population standard deviation), rounded outward to
    ``decimals``; None for fewer than ``MIN_HISTORY`` values."""
    n = len(history)
    if n < MIN_HISTORY:
        return None
    c = _STATISTICS
    mean = c.divide(exact_sum(history), n)
    variance = c.divide(exact_sum([c.power(c.subtract(h, mean), 2) for h in history]), n)
    spread = c.multiply(k, c.sqrt(variance))
    step = Decimal(1).scaleb(-decimals)
    low = c.subtract(mean, spread).quantize(step, ROUND_FLOOR, c)
    high = c.add(mean, spread).quantize(step, ROUND_CEILING, c)
    if low < 0 <= min(history):
        low = Decimal(0).quantize(step)
    return Bounds(low, high, _shown(mean), _shown(c.sqrt(variance)), n)


def _shown(value: Decimal) -> Decimal:
    return value.quantize(_SHOWN, ROUND_HALF_EVEN, _STATISTICS)


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
