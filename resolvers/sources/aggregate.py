"""An aggregate over a source's values: the rule of migrations/functions/aggregation.sql, walked level by level.

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
- an incomplete set of parts gives no value rather than a wrong one;
- a mean is rounded to the indicator's decimals where it is computed, as the SQL rounds it.

Many aggregates are walked together (a series' periods before its units existed): each level of
the hierarchy costs one batched call to the source and one statement for the next level's parts,
so a nation over a year from its provinces is one source call for its 408 cells, not 408 calls.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

from nrhub.resolvers.aggregate_rule import NOTHING, Aggregate, Aggregation, averages, least_final
from nrhub.resolvers.errors import BadUserInput, SourceUnavailable
from nrhub.resolvers.exact import exact_sum
from nrhub.resolvers.observations import UnitKey
from nrhub.resolvers.periods import Period
from nrhub.resolvers.queryable import Queryable
from nrhub.resolvers.sources.loaders import Cell, SourceLoaders
from nrhub.resolvers.sources.reads import check_size, in_force

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
class Rule:
    """Whose values are combined, where they come from, and how (a rate's parts are SUM)."""

    indicator: str
    source: str
    aggregation: Aggregation  # SUM, AVERAGE, LAST or NONE
    periodicity: str
    decimals: int  # a mean is rounded to these


Node = tuple[int, str]  # (unit id, period of the rule's frequency)


async def aggregates_from_source(
    db: Queryable,
    loaders: SourceLoaders,
    rule: Rule,
    asked: str,
    roots: Sequence[tuple[UnitKey, str]],
    dims: str,
    skip: Collection[str],
) -> list[Aggregate]:
    """The value of each (unit, period) by ``rule``; NOTHING where the parts are incomplete.

    ``asked`` is the indicator the caller asked for, whose grant (with each root unit's region)
    the parts are read under; levels in ``skip`` are never asked for (``fromLevel``). Raises
    SourceUnavailable when the source cannot answer for a part: a sum of what did answer would
    be a wrong value, not a missing one.
    """
    subperiods = [_periods_of(rule, place, Period.parse(period)) for place, period in roots]
    walk = _Walk(rule, dims, frozenset(skip), {place.id: place for place, _ in roots})
    start = list(dict.fromkeys(node for nodes in subperiods if nodes for node in nodes))
    known = await walk.run(db, loaders, asked, [place for place, _ in roots], start)
    combined: list[Aggregate | list[Aggregate]] = []
    for nodes in subperiods:
        if nodes is None or any(node not in known for node in nodes):
            combined.append(NOTHING)
        else:
            combined.append([known[node] for node in nodes])
    # A period made of several of the rule's periods: SUM, AVERAGE, or LAST (the latest one).
    several = [group for group in combined if isinstance(group, list) and len(group) > 1]
    if rule.aggregation == Aggregation.AVERAGE:
        groups = [[a.value for a in group if a.value is not None] for group in several]
        means = iter(await averages(db, groups, rule.decimals))
    results = []
    for group in combined:
        if not isinstance(group, list):
            results.append(group)
        elif len(group) == 1:
            results.append(group[0])
        elif rule.aggregation == Aggregation.SUM:
            results.append(_combined(exact_sum([a.value for a in group if a.value is not None]), group))
        elif rule.aggregation == Aggregation.AVERAGE:
            results.append(_combined(next(means), group))
        else:
            last = group[-1].value
            assert last is not None
            results.append(_combined(last, group))
    return results


def _periods_of(rule: Rule, place: UnitKey, period: Period) -> list[Node] | None:
    """The nodes a (unit, period) is made of at the rule's frequency; None when it has no value."""
    if period.frequency == rule.periodicity:
        return [(place.id, str(period))]
    if rule.aggregation == Aggregation.NONE:
        return None
    try:
        return [(place.id, str(p)) for p in period.subperiods(rule.periodicity)]
    except BadUserInput:  # a period shorter than the indicator's: there is no such value
        return None


class _Walk:
    """Values for nodes of one frequency: the source's where it holds them, else from parts."""

    def __init__(self, rule: Rule, dims: str, skip: frozenset[str], places: dict[int, UnitKey]) -> None:
        self.rule, self.dims, self.skip, self.places = rule, dims, skip, places
        self.known: dict[Node, Aggregate] = {}
        self.parts: dict[Node, list[Node]] = {}
        self.dead: set[Node] = set()  # neither a value nor a complete set of parts
        self.parents: dict[Node, set[Node]] = defaultdict(set)

    async def run(
        self, db: Queryable, loaders: SourceLoaders, asked: str, roots: Sequence[UnitKey], frontier: list[Node]
    ) -> dict[Node, Aggregate]:
        cells_asked = 0
        for _ in range(MAX_LEVELS):
            if not frontier:
                break
            askable = [n for n in frontier if self._askable(n)]
            cells_asked += len(askable)
            check_size(cells_asked)
            cells = [Cell(self.rule.indicator, self.rule.source, n[0], self.places[n[0]].code, n[1]) for n in askable]
            for node, answer in zip(askable, await loaders.load_parts(asked, roots, cells), strict=True):
                if isinstance(answer, SourceUnavailable):
                    raise answer
                value = answer.get(self.dims)
                if value is not None:
                    self.known[node] = Aggregate(value.value, value.status, 1, answer.source, answer.stale_age)
            missing = [n for n in frontier if n not in self.known]
            if self.rule.aggregation == Aggregation.NONE:
                self._kill(missing)
                break
            frontier = await self._expand(db, missing)
        else:
            self._kill(frontier)
        return await self._settle(db)

    def _askable(self, node: Node) -> bool:
        place = self.places[node[0]]
        return place.level not in self.skip and in_force(place, Period.parse(node[1]))

    async def _expand(self, db: Queryable, missing: list[Node]) -> list[Node]:
        """The parts of ``missing`` nodes; the ones not seen yet are the next level to ask for."""
        if not missing:
            return []
        for row in await db.fetch(_SELECT_PARTS, [n[0] for n in missing], [n[1] for n in missing]):
            node = missing[row["ord"] - 1]
            place = UnitKey(row["id"], row["code"], row["level"], row["valid_from"], row["valid_to"])
            self.places.setdefault(place.id, place)
            child = (place.id, node[1])
            self.parts.setdefault(node, []).append(child)
            self.parents[child].add(node)
        self._kill([n for n in missing if n not in self.parts])
        wanted = (c for n in missing if n not in self.dead for c in self.parts[n])
        return [c for c in dict.fromkeys(wanted) if c not in self.known and c not in self.parts and c not in self.dead]

    def _kill(self, nodes: list[Node]) -> None:
        # A node without a value makes every aggregate it is part of incomplete.
        while nodes:
            node = nodes.pop()
            if node not in self.dead:
                self.dead.add(node)
                nodes.extend(self.parents.get(node, ()))

    async def _settle(self, db: Queryable) -> dict[Node, Aggregate]:
        """Combine the derived nodes, parts before what they make up (by height above stored values)."""
        heights: dict[Node, int] = {}

        def height(node: Node) -> int:
            if node in self.known or node not in self.parts:
                return 0
            if node not in heights:
                heights[node] = 1 + max(height(c) for c in self.parts[node])
            return heights[node]

        by_height: dict[int, list[Node]] = defaultdict(list)
        for node in self.parts:
            by_height[height(node)].append(node)
        for level in sorted(by_height):
            ready = []
            for node in by_height[level]:
                if node in self.dead or any(c not in self.known for c in self.parts[node]):
                    self._kill([node])
                else:
                    ready.append(node)
            groups = [[self.known[c] for c in self.parts[node]] for node in ready]
            if self.rule.aggregation == Aggregation.AVERAGE:
                means = [[a.value for a in g if a.value is not None] for g in groups]
                values = await averages(db, means, self.rule.decimals)
            else:  # across units, SUM and LAST both add up (a stock of a nation is its provinces' stocks)
                values = [exact_sum([a.value for a in g if a.value is not None]) for g in groups]
            for node, group, value in zip(ready, groups, values, strict=True):
                self.known[node] = _combined(value, group)
        return self.known


def _combined(value: Decimal, parts: list[Aggregate]) -> Aggregate:
    ages = [a.stale_age for a in parts if a.stale_age is not None]
    return Aggregate(
        value,
        least_final([a.status for a in parts if a.status is not None]),
        sum(a.stored_parts for a in parts),
        parts[0].source,
        max(ages) if ages else None,
    )
