"""The Query root: catalogue, data and ``node``. Every data path runs under the caller's scope."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from resolvers import agencies, aggregates, indicators, observations, regimes, tables, units
from resolvers.errors import BadUserInput, Forbidden, NotFound
from resolvers.federated_indicators import HUB
from resolvers.observations import UnitKey
from resolvers.periods import Period as PeriodValue
from resolvers.periods import period_range
from resolvers.sources import reads as source_reads
from schema.catalogue import (
    AdministrativeUnit,
    Agency,
    AgencyKind,
    Frequency,
    Indicator,
    Regime,
    UnitLevel,
)
from schema.context import Info
from schema.data import Aggregate, Observation, ObservationStatus, Series, Table
from schema.me import Me, me_of
from schema.relay import Connection, Node, parse_global_id
from schema.report_queries import ReportQueries
from schema.scalars import Period
from schema.selection import (
    After,
    First,
    indicator_or_raise,
    page_of,
    readable_codes,
    report_all,
    unit_ids_of,
    units_of,
)
from schema.sources import Source

MAX_SERIES_CELLS = 200_000


def _period_list(first: str, last: str) -> list[str]:
    return [str(p) for p in period_range(PeriodValue.parse(first), PeriodValue.parse(last))]


@strawberry.type
class Query(ReportQueries):
    @strawberry.field(description="Who you are and what you may read.")
    def me(self, info: Info) -> Me:
        return me_of(info)

    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        kind, key = parse_global_id(id)
        loaders = info.context.loaders
        if kind == "Indicator":
            row = await loaders.indicator_by_code.load(key)
            return Indicator.of(row) if row else None
        if kind == "Agency":
            agency = await loaders.agency_by_code.load(key)
            return Agency.of(agency) if agency else None
        if kind == "Regime":
            regime = await loaders.regime_by_code.load(key)
            return Regime.of(regime) if regime else None
        if kind == "Observation" and not key.isdigit():
            return await _federated_node(info, key)
        if not key.isdigit():
            raise BadUserInput("id is not an id this API returned")
        if kind == "AdministrativeUnit":
            unit = await loaders.unit_by_id.load(int(key))
            return AdministrativeUnit.of(unit) if unit else None
        if kind == "Observation":
            obs = await loaders.observation_by_revision.load(int(key))
            return Observation.of(obs) if obs else None
        raise BadUserInput("id is not an id this API returned")

    @strawberry.field(
        description="Indicators you may read. search matches Vietnamese and English "
        "names and the code, ignoring accents and case."
    )
    async def indicators(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        field: str | None = None,
        periodicity: Frequency | None = None,
        responsible_agency: str | None = None,
        source: str | None = None,
        search: str | None = None,
    ) -> Connection[Indicator]:
        page = await indicators.list_indicators(
            info.context.db,
            page_of(info, first, after),
            info.context.scope,
            field=field,
            periodicity=periodicity.value if periodicity else None,
            responsible_agency=responsible_agency,
            source=source,
            search=search,
        )
        return Connection.of(page, Indicator)

    @strawberry.field(description="One indicator by code: NOT_FOUND if unknown, FORBIDDEN if not granted.")
    async def indicator(self, info: Info, code: str) -> Indicator | None:
        return await indicator_or_raise(info, code)

    @strawberry.field(
        description="Administrative units in force on valid_on (default today), or at any date with all_dates."
    )
    async def units(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        level: UnitLevel | None = None,
        parent: str | None = None,
        valid_on: date | None = None,
        all_dates: bool = False,
        search: str | None = None,
    ) -> Connection[AdministrativeUnit]:
        page = await units.list_units(
            info.context.db,
            page_of(info, first, after),
            level=level.value if level else None,
            parent=parent,
            valid_on=valid_on or info.context.today,
            all_dates=all_dates,
            search=search,
        )
        return Connection.of(page, AdministrativeUnit)

    @strawberry.field(description="The unit with this code in force on valid_on (default today).")
    async def unit(self, info: Info, code: str, valid_on: date | None = None) -> AdministrativeUnit | None:
        row = await units.fetch_unit(info.context.db, code, valid_on or info.context.today)
        if row is None:
            raise NotFound(f"there is no unit {code} in force on {(valid_on or info.context.today).isoformat()}")
        return AdministrativeUnit.of(row)

    @strawberry.field
    async def agencies(
        self, info: Info, first: First = None, after: After = None, kind: AgencyKind | None = None
    ) -> Connection[Agency]:
        page = await agencies.list_agencies(
            info.context.db, page_of(info, first, after), kind=kind.value if kind else None
        )
        return Connection.of(page, Agency)

    @strawberry.field
    async def agency(self, info: Info, code: str) -> Agency | None:
        row = await info.context.loaders.agency_by_code.load(code)
        if row is None:
            raise NotFound(f"there is no agency {code}")
        return Agency.of(row)

    @strawberry.field(description="All reporting regimes.")
    async def regimes(self, info: Info) -> list[Regime]:
        return [Regime.of(r) for r in await regimes.list_regimes(info.context.db)]

    @strawberry.field
    async def regime(self, info: Info, code: str) -> Regime | None:
        row = await info.context.loaders.regime_by_code.load(code)
        if row is None:
            raise NotFound(f"there is no regime {code}")
        return Regime.of(row)

    @strawberry.field(
        description="Current values, one per key. Name units by code (every unit that "
        "carried the code), or a parent with an optional level. from/to bound the period."
    )
    async def observations(
        self,
        info: Info,
        indicators: list[str],
        units: list[str] | None = None,
        parent: str | None = None,
        level: UnitLevel | None = None,
        from_: Annotated[Period | None, strawberry.argument(name="from")] = None,  # type: ignore[valid-type]
        to: Period | None = None,  # type: ignore[valid-type]
        disaggregation: str | None = None,
        status: ObservationStatus | None = None,
        first: First = None,
        after: After = None,
    ) -> Connection[Observation] | None:
        request = page_of(info, first, after)
        readable = await readable_codes(info, indicators)
        unit_ids = await unit_ids_of(info, units, parent, level)
        rows = await info.context.loaders.indicator_by_code.load_many(readable)
        federated = [r for r in rows if r is not None and r.source != "hub"]
        values: list[observations.Observation] = []
        if federated:
            values, problems = await source_reads.observation_rows(
                info.context.loaders.sources, federated, await units_of(info, unit_ids), from_, to, info.context.today
            )
            report_all(info, problems)
        page = await observations.list_observations(
            info.context.db,
            request,
            info.context.scope,
            indicators=[c for c in readable if c not in {r.code for r in federated}],
            unit_ids=unit_ids,
            first_period=from_,
            last_period=to,
            dims=disaggregation,
            status=status.value if status else None,
            federated=values,
        )
        return Connection.of(page, Observation)

    @strawberry.field(description="One current value by key (a point lookup); null when none is stored.")
    async def observation(
        self,
        info: Info,
        indicator: str,
        unit: str,
        period: Period,
        disaggregation: str = "",
        unit_valid_on: date | None = None,
    ) -> Observation | None:
        if not info.context.scope.may_read(indicator):
            await indicator_or_raise(info, indicator)  # raises FORBIDDEN or NOT_FOUND
        on = unit_valid_on or info.context.today
        db, scope = info.context.db, info.context.scope
        federated = await info.context.loaders.source_of(indicator) != HUB
        found = await observations.fetch_observation(
            db, scope, indicator, unit, period, disaggregation, on, federated=federated
        )
        if not found.unit_found:
            raise NotFound(f"there is no unit {unit} in force on that date")
        if not found.covered:
            raise Forbidden(f"you may not read values for unit {unit}")
        if found.unit is not None:
            # The catalogue row decides: the process's map may lag a change by its notification.
            row = await info.context.loaders.indicator_by_code.load(indicator)
            if row is not None and row.source != HUB:
                value = await source_reads.one_observation(
                    info.context.loaders.sources, row, found.unit, period, disaggregation
                )
                return Observation.of(value) if value else None
            found = await observations.fetch_observation(
                db, scope, indicator, unit, period, disaggregation, on, federated=False
            )
        return Observation.of(found.observation) if found.observation else None

    @strawberry.field(
        description="The dashboard table: indicators x units for one period (default: "
        "each series' latest period). Units by code, or a parent with a level."
    )
    async def table(
        self,
        info: Info,
        indicators: list[str],
        units: list[str] | None = None,
        parent: str | None = None,
        level: UnitLevel | None = None,
        period: Period | None = None,  # type: ignore[valid-type]
    ) -> Table | None:
        readable = await readable_codes(info, indicators)
        unit_ids = await unit_ids_of(info, units, parent, level)
        # Columns are the readable codes that exist, in the order asked; rows follow them exactly.
        rows = [r for r in await info.context.loaders.indicator_by_code.load_many(readable) if r is not None]
        readable = [r.code for r in rows]
        federated = [(n, r) for n, r in enumerate(rows) if r.source != "hub"]
        if federated:
            block, problems = await tables.fetch_table_with_sources(
                info.context.db,
                info.context.loaders.sources,
                readable,
                federated,
                await units_of(info, unit_ids),
                period,
                info.context.today,
            )
            report_all(info, problems)
        else:
            block = await tables.fetch_table(info.context.db, readable, unit_ids, period)
        return Table(period=period, columns=[Indicator.of(r) for r in rows], rows=block)

    @strawberry.field(description="One indicator over units and a period range, values as arrays.")
    async def series(
        self,
        info: Info,
        indicator: str,
        from_: Annotated[Period, strawberry.argument(name="from")],  # type: ignore[valid-type]
        to: Period,
        units: list[str] | None = None,
        parent: str | None = None,  # type: ignore[valid-type]
        level: UnitLevel | None = None,
        disaggregation: str = "",
        through_lineage: Annotated[
            bool,
            strawberry.argument(description="Compute periods before a unit existed from its predecessors."),
        ] = True,
    ) -> Series | None:
        found = await indicator_or_raise(info, indicator)
        periods = _period_list(from_, to)
        if periods and PeriodValue.parse(periods[0]).frequency != found.periodicity.value:
            raise BadUserInput(
                f"{indicator} is reported with frequency {found.periodicity.value}; ask for periods of that frequency"
            )
        unit_ids = await unit_ids_of(info, units, parent, level)
        if len(unit_ids) * len(periods) > MAX_SERIES_CELLS:
            raise BadUserInput(f"a series may hold at most {MAX_SERIES_CELLS} cells; narrow it")
        if found.source != "hub":
            unit_rows = await units_of(info, unit_ids)
            derived, problems = {}, []
            if through_lineage:
                derived, problems = await aggregates.before_existence(
                    info.context.db,
                    info.context.loaders.sources,
                    found._row,
                    [UnitKey.of(u) for u in unit_rows],
                    periods,
                    disaggregation,
                )
            block, more = await source_reads.series_block(
                info.context.loaders.sources, found._row, unit_rows, periods, disaggregation, derived
            )
            report_all(info, source_reads.problems_of([*problems, *more]))  # one error per source
        else:
            block = await tables.fetch_series(
                info.context.db, indicator, unit_ids, periods, disaggregation, derive=through_lineage
            )
        return Series(indicator=found, disaggregation=disaggregation, periods=periods, rows=block)

    @strawberry.field(
        description="A value for any unit and period by the indicator's rule, e.g. a "
        "2025 province over 2023 through the old provinces it absorbed, or a rate "
        "from communes as sum(numerator) / sum(denominator)."
    )
    async def aggregate(
        self,
        info: Info,
        indicator: str,
        unit: str,
        period: Period,  # type: ignore[valid-type]
        disaggregation: str = "",
        unit_valid_on: date | None = None,
        from_level: Annotated[
            UnitLevel | None,
            strawberry.argument(
                description="Ignore values stored above this level, e.g. COMMUNE to "
                "recompute a province from its communes."
            ),
        ] = None,
    ) -> Aggregate | None:
        found = await indicator_or_raise(info, indicator)
        row = await units.fetch_unit(info.context.db, unit, unit_valid_on or info.context.today)
        if row is None:
            raise NotFound(f"there is no unit {unit} in force on that date")
        if not info.context.scope.covers_unit(row.id):
            raise Forbidden(f"you may not read values for unit {unit}")
        result = await aggregates.fetch_aggregate(
            info.context.db,
            info.context.loaders.sources,
            found._row,
            UnitKey.of(row),
            period,
            disaggregation,
            from_level=from_level.value if from_level else None,
        )
        return Aggregate.of(found, AdministrativeUnit.of(row), period, disaggregation, result)

    @strawberry.field(
        description="The federated sources this hub process reads, with their health as this process sees it."
    )
    def sources(self, info: Info) -> list[Source]:
        registry = info.context.loaders.sources.registry
        return [Source.of(s, info.context.scope) for s in registry] if registry else []


async def _federated_node(info: Info, key: str) -> Observation | None:
    """A source's value by the key its id holds: indicator:unit id:period:dims, asked again."""
    parts = key.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        raise BadUserInput("id is not an id this API returned")
    code, unit_id, period, dims = parts[0], int(parts[1]), parts[2], parts[3]
    row = await info.context.loaders.indicator_by_code.load(code)
    unit = await info.context.loaders.unit_by_id.load(unit_id)
    if row is None or row.source == "hub" or unit is None or not info.context.scope.covers_unit(unit_id):
        return None
    value = await source_reads.one_observation(
        info.context.loaders.sources, row, unit, str(PeriodValue.parse(period)), dims
    )
    return Observation.of(value) if value else None
