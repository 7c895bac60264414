"""An aggregate over a source's values: the rule of migrations 0005 and 0008, walked level by level.

The hub aggregates its own indicators inside PostgreSQL (``aggregate_observation``). A source's
values never enter the hub's tables, so for an indicator a source serves the same rule is
followed here over the source's answers:

- a period coarser than the indicator's periodicity combines its subperiods (SUM, AVERAGE, or
  LAST: the latest one); NONE gives no value;
- otherwise the source's value for the unit, if the unit was in force at the period's end (a
  reused code never lends an old unit's figures) and its level is not skipped (``from_level``);
- otherwise the unit's parts for that period, found the same way: the units it was formed from
  when the period ended before it existed (the 2025 reform), else the units below it in force
  then. The database decides which units are parts (``part_units``);
- an incomplete set of parts gives no value rather than a wrong one.

Each level of the hierarchy costs one batched call to the source and one statement for the next
level's parts, so a nation over a year from its provinces is two source calls, not 408.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from resolvers.aggregate_rule import NOTHING, Aggregate, averages, exact_sum, least_final
from resolvers.errors import BadUserInput, SourceUnavailable
from resolvers.periods import Period
from resolvers.queryable import Queryable
from resolvers.sources.loaders import Cell, SourceLoaders
from resolvers.sources.reads import check_size, in_force

# Nation > province > district > commune, and the units a 2025 unit was formed from: no walk is
# deeper than five levels; one that would be is treated as incomplete.
MAX_LEVELS = 8

_SELECT_PARTS = """
SELECT n.ord, p.id, p.code, p.level, p.valid_from, p.valid_to
FROM unnest($1::int[], $2::text[]) WITH ORDINALITY AS n(unit_id, period, ord)
CROSS JOIN LATERAL unnest(part_units(n.unit_id, n.period)) AS part(id)
JOIN admin_unit p ON p.id = part.id
ORDER BY n.ord, p.id
"""


@dataclass(frozen=True, slots=True)
class Place:
    """A unit as the walk needs it: what the source knows it by, its level, when it was in force."""

    id: int
    code: str
    level: str
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True, slots=True)
class Rule:
    """Whose values are combined, where they come from, and how (a rate's parts are SUM)."""

    indicator: str
    source: str
    aggregation: str  # SUM, AVERAGE, LAST or NONE
    periodicity: str


@dataclass(frozen=True, slots=True)
class Asked:
    """The aggregate the caller asked for: the one whose grant and region the parts are read under."""

    indicator: str
    unit: Place


Node = tuple[int, str]  # (unit id, period)


async def aggregate_from_source(
    db: Queryable,
    loaders: SourceLoaders,
    rule: Rule,
    asked: Asked,
    period: Period,
    dims: str,
    skip: frozenset[str],
) -> Aggregate:
    """The value of ``asked.unit`` for ``period`` by ``rule``; raises SourceUnavailable when the
    source cannot answer for a part (a partial answer would be a wrong value, not a missing one)."""
    if period.frequency == rule.periodicity:
        periods = [period]
    elif rule.aggregation == "NONE":
        return NOTHING
    else:
        try:
            periods = period.subperiods(rule.periodicity)
        except BadUserInput:  # a period shorter than the indicator's: there is no such value
            return NOTHING
    found = await _walk(db, loaders, rule, asked, [str(p) for p in periods], dims, skip)
    if found is None:
        return NOTHING
    if len(found) == 1:
        return found[0]
    values = [a.value for a in found if a.value is not None]
    if rule.aggregation == "SUM":
        value = exact_sum(values)
    elif rule.aggregation == "AVERAGE":
        (value,) = await averages(db, [values])
    else:  # LAST: the latest subperiod
        value = values[-1]
    return _combined(value, found)


async def _walk(
    db: Queryable,
    loaders: SourceLoaders,
    rule: Rule,
    asked: Asked,
    periods: list[str],
    dims: str,
    skip: frozenset[str],
) -> list[Aggregate] | None:
    """The aggregate of ``asked.unit`` for each of ``periods`` (same frequency as the rule), or
    None as soon as one part turns out to have neither a value nor parts of its own."""
    places = {asked.unit.id: asked.unit}
    known: dict[Node, Aggregate] = {}
    parts_of: dict[Node, list[Node]] = {}
    levels: list[list[Node]] = []
    frontier: list[Node] = [(asked.unit.id, p) for p in periods]
    cells_asked = 0
    for _ in range(MAX_LEVELS):
        askable = [n for n in frontier if places[n[0]].level not in skip and in_force(places[n[0]], Period.parse(n[1]))]
        cells_asked += len(askable)
        check_size(cells_asked)
        cells = [Cell(rule.indicator, rule.source, n[0], places[n[0]].code, n[1]) for n in askable]
        answers = await loaders.load_parts(asked.indicator, asked.unit.id, asked.unit.code, cells)
        for node, answer in zip(askable, answers, strict=True):
            if isinstance(answer, SourceUnavailable):
                raise answer
            value = answer.get(dims)
            if value is not None:
                known[node] = Aggregate(value.value, value.status, 1, answer.source, answer.stale_age)
        missing = [n for n in frontier if n not in known]
        if not missing:
            break
        if rule.aggregation == "NONE":
            return None
        children: dict[Node, list[Node]] = defaultdict(list)
        for row in await db.fetch(_SELECT_PARTS, [n[0] for n in missing], [n[1] for n in missing]):
            node = missing[row["ord"] - 1]
            places.setdefault(
                row["id"], Place(row["id"], row["code"], row["level"], row["valid_from"], row["valid_to"])
            )
            children[node].append((row["id"], node[1]))
        if len(children) < len(missing):
            return None
        parts_of.update(children)
        levels.append(missing)
        frontier = list(dict.fromkeys(child for node in missing for child in children[node]))
    else:
        return None
    for level in reversed(levels):  # from the finest parts up
        parts = [[known[child] for child in parts_of[node]] for node in level]
        if rule.aggregation == "AVERAGE":
            values = await averages(db, [[a.value for a in group if a.value is not None] for group in parts])
        else:  # across units, SUM and LAST both add up
            values = [exact_sum([a.value for a in group if a.value is not None]) for group in parts]
        for node, group, value in zip(level, parts, values, strict=True):
            known[node] = _combined(value, group)
    return [known[(asked.unit.id, p)] for p in periods]


def _combined(value: Decimal, parts: list[Aggregate]) -> Aggregate:
    ages = [a.stale_age for a in parts if a.stale_age is not None]
    return Aggregate(
        value,
        least_final([a.status for a in parts if a.status is not None]),
        sum(a.stored_parts for a in parts),
        parts[0].source,
        max(ages) if ages else None,
    )
