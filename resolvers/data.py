"""Where an indicator's values come from, decided in one place: the hub's tables or its source.

Every data path (observations, one observation, table, series, aggregate, a source value's node)
asks this module, which routes each indicator by its catalogue row to the hub's own tables
(resolvers/observations.py, tables.py, aggregates.py) or to the federated source that serves it
(resolvers/sources/reads.py). schema/query.py only maps what comes back to GraphQL types. Problems
that leave the other values standing (a source that could not answer, a unit named but not
readable) are returned beside the values for the schema to report at the field's path.

It also holds the rules every path shares for the keys asked for: which units a selection names
on which date, and what a disaggregation may say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from nrhub.resolvers import aggregates, observations, tables
from nrhub.resolvers.aggregate_rule import Aggregate
from nrhub.resolvers.errors import BadUserInput, Forbidden, HubError, NotFound, SourceUnavailable
from nrhub.resolvers.federated_indicators import HUB
from nrhub.resolvers.indicators import Indicator
from nrhub.resolvers.loaders import Loaders
from nrhub.resolvers.observations import Observation, SelectedUnits, UnitKey, UnitSelection
from nrhub.resolvers.pagination import Page, PageRequest
from nrhub.resolvers.periods import Period
from nrhub.resolvers.sources import reads as source_reads
from nrhub.resolvers.units import Unit, fetch_unit


@dataclass(frozen=True, slots=True)
class Block:
    """A table or series as one JSON block, with the problems to report beside it."""

    json: str
    problems: list[HubError]


def units_date(valid_on: date | None, period: str | None, today: date) -> date:
    """The day unit codes are read on: ``valid_on``, else the last day of ``period``, else today."""
    if valid_on is not None:
        return valid_on
    return Period.parse(period).end if period is not None else today


async def select_units(
    loaders: Loaders, codes: Sequence[str] | None, parent: str | None, level: str | None, on: date, *, exact: bool
) -> SelectedUnits:
    """The units named (see ``UnitSelection``), under the caller's regions."""
    return await observations.select_units(loaders.db, UnitSelection(codes, parent, level, on, exact), loaders.scope)


async def check_disaggregation(loaders: Loaders, indicators: Sequence[str], dims: str) -> str:
    """``dims`` in its stored form (parts sorted by dimension), or BAD_USER_INPUT naming what is wrong.

    A key no indicator can hold would only ever answer null; it is a mistake to say so.
    """
    if dims == "" or not indicators:
        return dims
    parts = [part.partition("=") for part in dims.split("|")]
    if any(not name or not sep or not value for name, sep, value in parts):
        raise BadUserInput(f"disaggregation {dims!r} is not of the form DIMENSION=VALUE|..., e.g. SEX=F")
    known = {d.code: d for found in await loaders.dimensions_by_indicator.load_many(list(indicators)) for d in found}
    for name, _, value in parts:
        dimension = known.get(name)
        if dimension is None:
            have = ", ".join(sorted(known)) or "none"
            raise BadUserInput(f"{', '.join(indicators)} has no dimension {name} (dimensions: {have})")
        values = [code for code, _, _ in dimension.values if code != "_T"]
        if value == "_T":
            raise BadUserInput(f"the total over {name} is asked for by leaving {name} out of disaggregation")
        if value not in values:
            raise BadUserInput(f"dimension {name} has no value {value} (values: {', '.join(sorted(values))})")
    if len({name for name, _, _ in parts}) != len(parts):
        raise BadUserInput(f"disaggregation {dims!r} names a dimension twice")
    return "|".join(f"{name}={value}" for name, _, value in sorted(parts))


async def _indicators(loaders: Loaders, codes: Sequence[str]) -> list[Indicator]:
    """The catalogue rows of readable codes that exist, in the order asked."""
    return [r for r in await loaders.indicator_by_code.load_many(list(codes)) if r is not None]


async def _units(loaders: Loaders, unit_ids: Sequence[int]) -> list[Unit]:
    return [u for u in await loaders.unit_by_id.load_many(list(unit_ids)) if u is not None]


async def list_observations(
    loaders: Loaders,
    page: PageRequest,
    codes: Sequence[str],
    unit_ids: Sequence[int],
    first_period: str | None,
    last_period: str | None,
    dims: str | None,
    status: str | None,
) -> tuple[Page[Observation], list[HubError]]:
    """Current values of readable ``codes``: the hub's and the sources', paged together."""
    federated = [r for r in await _indicators(loaders, codes) if r.source != HUB]
    values: list[Observation] = []
    problems: list[HubError] = []
    if federated:
        units = await _units(loaders, unit_ids)
        values, unavailable = await source_reads.observation_rows(
            loaders.sources, federated, units, first_period, last_period, loaders.today
        )
        problems += unavailable
    served = {r.code for r in federated}
    found = await observations.list_observations(
        loaders.db,
        page,
        loaders.scope,
        indicators=[c for c in codes if c not in served],
        unit_ids=unit_ids,
        first_period=first_period,
        last_period=last_period,
        dims=dims,
        status=status,
        federated=values,
    )
    return found, problems


async def fetch_observation(
    loaders: Loaders, indicator: str, unit: str, period: str, dims: str, on: date
) -> Observation | None:
    """One current value by key (the caller has checked the indicator grant); raises NOT_FOUND
    for an unknown unit and FORBIDDEN for one outside the caller's regions."""
    db, scope = loaders.db, loaders.scope
    federated = await loaders.source_of(indicator) != HUB
    found = await observations.fetch_observation(db, scope, indicator, unit, period, dims, on, federated=federated)
    if not found.unit_found:
        raise NotFound(f"there is no unit {unit} in force on that date")
    if not found.covered:
        raise Forbidden(f"you may not read values for unit {unit}")
    if found.unit is None:
        return found.observation
    # The catalogue row decides: the process's map may lag a change by its notification.
    row = await loaders.indicator_by_code.load(indicator)
    if row is not None and row.source != HUB:
        return await source_reads.one_observation(loaders.sources, row, found.unit, period, dims)
    found = await observations.fetch_observation(db, scope, indicator, unit, period, dims, on, federated=False)
    return found.observation


async def fetch_table(
    loaders: Loaders, codes: Sequence[str], unit_ids: Sequence[int], period: str | None
) -> tuple[list[Indicator], Block]:
    """The columns (readable codes that exist, in the order asked) and the table's block."""
    columns = await _indicators(loaders, codes)
    readable = [r.code for r in columns]
    # A rate is computed where a stored one would stand: at its own frequency (or its latest period).
    frequency = Period.parse(period).frequency if period is not None else None
    rates = [
        r.code for r in columns if frequency in (None, r.periodicity) and aggregates.rate_in_database(loaders.scope, r)
    ]
    federated = [(n, r) for n, r in enumerate(columns) if r.source != HUB]
    if not federated:
        return columns, Block(await tables.fetch_table(loaders.db, readable, unit_ids, period, rates), [])
    units = await _units(loaders, unit_ids)
    block, problems = await tables.fetch_table_with_sources(
        loaders.db, loaders.sources, readable, federated, units, period, loaders.today, rates=rates
    )
    return columns, Block(block, list(problems))


async def fetch_series(
    loaders: Loaders, indicator: str, unit_ids: Sequence[int], periods: Sequence[str], dims: str, *, derive: bool
) -> Block:
    """One readable indicator over units and periods; with ``derive``, periods before a unit
    existed come from the units it was formed from."""
    row = await loaders.indicator_by_code.load(indicator)
    assert row is not None  # the caller checked it is readable
    rate = aggregates.rate_in_database(loaders.scope, row)
    if aggregates.rate_withheld(loaders.scope, row):
        derive = False  # a derived cell of a rate is a computed rate too
    if row.source == HUB:
        block = await tables.fetch_series(loaders.db, indicator, unit_ids, periods, dims, derive=derive, rate=rate)
        return Block(block, [])
    units = await _units(loaders, unit_ids)
    derived: dict[tuple[int, str], Aggregate] = {}
    problems: list[SourceUnavailable] = []
    if derive:
        keys = [UnitKey.of(u) for u in units]
        derived, problems = await aggregates.before_existence(loaders.db, loaders.sources, row, keys, periods, dims)
    block, more = await source_reads.series_block(loaders.sources, row, units, periods, dims, derived)
    return Block(block, list(source_reads.problems_of([*problems, *more])))  # one error per source


async def fetch_aggregate(
    loaders: Loaders,
    indicator: str,
    unit: str,
    on: date,
    period: str,
    dims: str,
    from_level: str | None,
) -> tuple[Unit, Aggregate]:
    """The unit in force on ``on`` and the readable indicator's value for it by its rule."""
    found = await fetch_unit(loaders.db, unit, on)
    if found is None:
        raise NotFound(f"there is no unit {unit} in force on that date")
    if not loaders.scope.covers_unit(found.id):
        raise Forbidden(f"you may not read values for unit {unit}")
    row = await loaders.indicator_by_code.load(indicator)
    assert row is not None  # the caller checked it is readable
    if aggregates.rate_withheld(loaders.scope, row):
        # Said without naming the components: the caller may not read one of them.
        raise Forbidden(f"{indicator} is not computed for you: you may read one of its components but not the other")
    result = await aggregates.fetch_aggregate(
        loaders.db, loaders.sources, row, UnitKey.of(found), period, dims, from_level=from_level
    )
    return found, result


async def fetch_source_value(loaders: Loaders, key: str) -> Observation | None:
    """A source's value by the key its id holds (indicator:unit id:period:dims), asked again."""
    parts = key.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        raise BadUserInput("id is not an id this API returned")
    code, unit_id, period, dims = parts[0], int(parts[1]), parts[2], parts[3]
    row = await loaders.indicator_by_code.load(code)
    unit = await loaders.unit_by_id.load(unit_id)
    if row is None or row.source == HUB or unit is None or not loaders.scope.covers_unit(unit_id):
        return None
    return await source_reads.one_observation(loaders.sources, row, unit, str(Period.parse(period)), dims)
