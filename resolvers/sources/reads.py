"""The read shapes (table, series, observations, one value) for indicators served by a source.

The caller has settled authorization: the indicators are readable and the units covered by the
scope. A source answers for a unit code; its value counts for the unit only for periods during
which that unit was in force (at the period's last day, the rule every stored observation obeys),
so a reused code never lends an old unit's figures to a new one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from nrhub.resolvers.aggregate_rule import Aggregate
from nrhub.resolvers.errors import BadUserInput, SourceUnavailable
from nrhub.resolvers.indicators import Indicator
from nrhub.resolvers.observations import Observation, UnitKey
from nrhub.resolvers.periods import Period, containing, period_range
from nrhub.resolvers.sources.loaders import Cell, CellValues, SourceLoaders
from nrhub.resolvers.units import Unit as StoredUnit

Unit = StoredUnit | UnitKey  # anything with id, code, valid_from and valid_to
MAX_CELLS = 50_000  # cells one field may ask the sources for


@dataclass(frozen=True, slots=True)
class TableCell:
    value: Decimal
    period: str
    status: str
    provenance: str


def in_force(unit: Unit, period: Period) -> bool:
    last_day = period.end
    return unit.valid_from <= last_day and (unit.valid_to is None or unit.valid_to >= last_day)


def latest_periods(frequency: str, today: date, window: int) -> list[Period]:
    """The ``window`` periods up to the one containing ``today``, newest first."""
    current = containing(Period(today.year, today.month, "M"), frequency)
    periods = [current]
    while len(periods) < window:
        periods.append(periods[-1].previous())
    return periods


def candidate_periods(frequency: str, first: str | None, last: str | None, today: date, window: int) -> list[Period]:
    """Periods of ``frequency`` that may fall between ``first`` and ``last`` (SQL filters exactly).

    Without bounds: the source's window up to today. Bounds may be of another frequency (the
    hub compares periods as text), so whole years around them are taken.
    """
    if first is None and last is None:
        return latest_periods(frequency, today, window)
    bounds = [Period.parse(p) for p in (first, last) if p is not None]
    if len(bounds) == 2 and all(p.frequency == frequency for p in bounds):
        return period_range(*bounds) if bounds[0] <= bounds[1] else []
    top = Period.parse(last).year if last else today.year
    years_back = -(-window * Period(top, 1, frequency).months // 12)  # ceiling
    bottom = Period.parse(first).year if first else top - years_back
    if top < bottom:
        return []
    first_of = Period(bottom, 1, frequency)
    return period_range(first_of, containing(Period(top, 12, "M"), frequency))


def check_size(cells: int) -> None:
    if cells > MAX_CELLS:
        raise BadUserInput(f"this asks federated sources for {cells} values, more than {MAX_CELLS}; narrow it")


def problems_of(results: Sequence[CellValues | SourceUnavailable]) -> list[SourceUnavailable]:
    """One error per distinct reason (normally one per failing source)."""
    seen: dict[str, SourceUnavailable] = {}
    for result in results:
        if isinstance(result, SourceUnavailable):
            seen.setdefault(result.message, result)
    return list(seen.values())


async def table_cells(
    loaders: SourceLoaders,
    columns: Sequence[tuple[int, Indicator]],
    units: Sequence[Unit],
    period: str | None,
    today: date,
) -> tuple[dict[tuple[int, int], TableCell], list[SourceUnavailable]]:
    """Cells of the federated columns, keyed (unit id, column); the latest period unless ``period``."""
    cells = []
    for _, indicator in columns:
        if period is not None:
            wanted = [Period.parse(period)]
            if wanted[0].frequency != indicator.periodicity:
                continue  # the hub's own columns are null there too
        else:
            wanted = latest_periods(indicator.periodicity, today, loaders.window(indicator.source))
        for unit in units:
            cells += [
                Cell(indicator.code, indicator.source, unit.id, unit.code, str(p)) for p in wanted if in_force(unit, p)
            ]
    check_size(len(cells))
    results = await loaders.load(cells)
    found: dict[tuple[int, int], TableCell] = {}
    codes = {indicator.code: column for column, indicator in columns}
    for cell, result in zip(cells, results, strict=True):
        if isinstance(result, SourceUnavailable):
            continue
        total = result.get("")
        key = (cell.unit_id, codes[cell.indicator])
        if total is None or (key in found and found[key].period >= cell.period):
            continue
        found[key] = TableCell(total.value, cell.period, total.status, result.provenance)
    return found, problems_of(results)


def merge_table(block: str, found: dict[tuple[int, int], TableCell], unit_ids: Sequence[int]) -> str:
    """Fill federated cells into the hub's JSON table (rows are in ``unit_ids`` order)."""
    by_unit: dict[int, list[tuple[int, TableCell]]] = {}
    for (unit_id, column), cell in found.items():
        by_unit.setdefault(unit_id, []).append((column, cell))
    rows = json.loads(block, parse_float=Decimal)
    for row, unit_id in zip(rows, unit_ids, strict=True):
        for column, cell in by_unit.get(unit_id, ()):
            row["values"][column] = cell.value
            row["periods"][column] = cell.period
            row["statuses"][column] = cell.status
            row["provenance"][column] = cell.provenance
    return dump(rows)


async def series_block(
    loaders: SourceLoaders,
    indicator: Indicator,
    units: Sequence[Unit],
    periods: Sequence[str],
    dims: str,
    derived: Mapping[tuple[int, str], Aggregate] | None = None,
) -> tuple[str, list[SourceUnavailable]]:
    """The series JSON block ``[{unit, values, statuses, provenance}]`` from the indicator's source.

    ``derived`` holds cells computed for periods before a unit existed (resolvers/aggregates.py
    ``before_existence``), shown with ``computed:<stored parts>`` as the hub's own series shows them.
    """
    parsed = [Period.parse(p) for p in periods]
    cells = [
        Cell(indicator.code, indicator.source, unit.id, unit.code, str(p))
        for unit in units
        for p in parsed
        if in_force(unit, p)
    ]
    check_size(len(cells))
    results = dict(zip(cells, await loaders.load(cells), strict=True))
    rows = []
    for unit in units:
        values: list[Any] = []
        statuses: list[str | None] = []
        provenance: list[str | None] = []
        for p in parsed:
            computed = derived.get((unit.id, str(p))) if derived else None
            if computed is not None:
                values.append(computed.value)
                statuses.append(computed.status)
                provenance.append(f"computed:{computed.stored_parts}")
                continue
            result = results.get(Cell(indicator.code, indicator.source, unit.id, unit.code, str(p)))
            found = result.get(dims) if isinstance(result, CellValues) else None
            values.append(found.value if found else None)
            statuses.append(found.status if found else None)
            provenance.append(result.provenance if found and isinstance(result, CellValues) else None)
        rows.append({"unit": unit.code, "values": values, "statuses": statuses, "provenance": provenance})
    return dump(rows), problems_of(list(results.values()))


async def observation_rows(
    loaders: SourceLoaders,
    indicators: Sequence[Indicator],
    units: Sequence[Unit],
    first: str | None,
    last: str | None,
    today: date,
) -> tuple[list[Observation], list[SourceUnavailable]]:
    """Every value the sources hold for these indicators, units and (a superset of) the periods."""
    cells = []
    for indicator in indicators:
        window = loaders.window(indicator.source)
        for p in candidate_periods(indicator.periodicity, first, last, today, window):
            cells += [Cell(indicator.code, indicator.source, u.id, u.code, str(p)) for u in units if in_force(u, p)]
    check_size(len(cells))
    results = await loaders.load(cells)
    rows = [
        Observation(
            None,
            cell.indicator,
            cell.unit_id,
            cell.period,
            v.dims,
            v.value,
            v.status,
            None,
            result.source,
            result.stale_age,
        )
        for cell, result in zip(cells, results, strict=True)
        if isinstance(result, CellValues)
        for v in result.values
    ]
    return rows, problems_of(results)


async def one_observation(
    loaders: SourceLoaders, indicator: Indicator, unit: Unit, period: str, dims: str
) -> Observation | None:
    """One value by key; raises SourceUnavailable when the source cannot answer."""
    if not in_force(unit, Period.parse(period)) or Period.parse(period).frequency != indicator.periodicity:
        return None
    (result,) = await loaders.load([Cell(indicator.code, indicator.source, unit.id, unit.code, period)])
    if isinstance(result, SourceUnavailable):
        raise result
    found = result.get(dims)
    if found is None:
        return None
    return Observation(
        None, indicator.code, unit.id, period, dims, found.value, found.status, None, result.source, result.stale_age
    )


def dump(rows: list[dict[str, Any]]) -> str:
    """JSON with every Decimal written with exactly its digits (never through a float)."""
    return orjson.dumps(rows, default=_exact).decode()


def _exact(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode())
    raise TypeError(f"{type(value).__name__} is not JSON")
