"""The Query root: catalogue, data and ``node``. Every data path runs under the caller's scope."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from nrhub.resolvers import agencies, data, indicators, regimes, units
from nrhub.resolvers.errors import BadUserInput, NotFound
from nrhub.resolvers.periods import Period as PeriodValue
from nrhub.resolvers.periods import period_range
from nrhub.schema.catalogue import (
    AdministrativeUnit,
    Agency,
    AgencyKind,
    Frequency,
    Indicator,
    Regime,
    UnitLevel,
)
from nrhub.schema.context import Info
from nrhub.schema.data import Aggregate, Observation, ObservationStatus, Series, Table
from nrhub.schema.me import Me, me_of
from nrhub.schema.relay import Connection, Node, parse_global_id
from nrhub.schema.report_queries import ReportQueries
from nrhub.schema.scalars import Period
from nrhub.schema.selection import (
    After,
    First,
    indicator_or_raise,
    page_of,
    readable_codes,
    report_all,
)
from nrhub.schema.sources import Source
from nrhub.schema.timeliness import TimelinessQueries
from nrhub.schema.validation_rules import RuleQueries
from nrhub.schema.webhooks import WebhookQueries

MAX_SERIES_CELLS = 200_000

UnitValidOn = Annotated[
    date | None,
    strawberry.argument(
        description="The day unit codes (and parent) are read on; default: the last day of the period "
        "asked (to, for observations), else today, so a 2024 period reads the 63 provinces of 2024. A "
        "code no unit carried that day names the unit that carried it last (02 is the pre-2025 Ha Giang)."
    ),
]


def _period_list(first: str, last: str) -> list[str]:
    return [str(p) for p in period_range(PeriodValue.parse(first), PeriodValue.parse(last))]


@strawberry.type
class Query(ReportQueries, TimelinessQueries, WebhookQueries, RuleQueries):
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
            found = await data.fetch_source_value(loaders, key)
            return Observation.of(found) if found else None
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
        description="Current values, one per key. Name units by code, or a parent with an optional "
        "level; codes are read on unitValidOn. from/to bound the period."
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
        unit_valid_on: UnitValidOn = None,
    ) -> Connection[Observation] | None:
        request = page_of(info, first, after)
        readable = await readable_codes(info, indicators)
        loaders = info.context.loaders
        if disaggregation is not None:
            disaggregation = await data.check_disaggregation(loaders, readable, disaggregation)
        on = data.units_date(unit_valid_on, to, info.context.today)
        unit_ids = await _selected(info, units, parent, level, on, exact=unit_valid_on is not None)
        page, problems = await data.list_observations(
            loaders, request, readable, unit_ids, from_, to, disaggregation, status.value if status else None
        )
        report_all(info, problems)
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
        loaders = info.context.loaders
        dims = await data.check_disaggregation(loaders, [indicator], disaggregation)
        on = unit_valid_on or info.context.today
        found = await data.fetch_observation(loaders, indicator, unit, period, dims, on)
        return Observation.of(found) if found else None

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
        unit_valid_on: UnitValidOn = None,
    ) -> Table | None:
        readable = await readable_codes(info, indicators)
        on = data.units_date(unit_valid_on, period, info.context.today)
        unit_ids = await _selected(info, units, parent, level, on, exact=unit_valid_on is not None)
        columns, block = await data.fetch_table(info.context.loaders, readable, unit_ids, period)
        report_all(info, block.problems)
        return Table(period=period, columns=[Indicator.of(r) for r in columns], rows=block.json)

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
        unit_valid_on: Annotated[
            date | None,
            strawberry.argument(
                description="The day unit codes (and parent) are read on; default today, with earlier "
                "periods reached through throughLineage. A code no unit carried that day names the unit "
                "that carried it last (02 is the pre-2025 Ha Giang); give a date to choose, e.g. "
                "2024-12-31 for the 63 provinces."
            ),
        ] = None,
    ) -> Series | None:
        found = await indicator_or_raise(info, indicator)
        periods = _period_list(from_, to)
        if periods and PeriodValue.parse(periods[0]).frequency != found.periodicity.value:
            raise BadUserInput(
                f"{indicator} is reported with frequency {found.periodicity.value}; ask for periods of that frequency"
            )
        loaders = info.context.loaders
        dims = await data.check_disaggregation(loaders, [indicator], disaggregation)
        on = unit_valid_on or info.context.today
        unit_ids = await _selected(info, units, parent, level, on, exact=unit_valid_on is not None)
        if len(unit_ids) * len(periods) > MAX_SERIES_CELLS:
            raise BadUserInput(f"a series may hold at most {MAX_SERIES_CELLS} cells; narrow it")
        block = await data.fetch_series(loaders, indicator, unit_ids, periods, dims, derive=through_lineage)
        report_all(info, block.problems)
        return Series(indicator=found, disaggregation=dims, periods=periods, rows=block.json)

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
        loaders = info.context.loaders
        dims = await data.check_disaggregation(loaders, [indicator], disaggregation)
        on = unit_valid_on or info.context.today
        level = from_level.value if from_level else None
        row, result = await data.fetch_aggregate(loaders, indicator, unit, on, period, dims, level)
        return Aggregate.of(found, AdministrativeUnit.of(row), period, dims, result)

    @strawberry.field(
        description="The federated sources this hub process reads, with their health as this process sees it."
    )
    def sources(self, info: Info) -> list[Source]:
        registry = info.context.loaders.sources.registry
        return [Source.of(s, info.context.scope) for s in registry] if registry else []


async def _selected(
    info: Info, codes: list[str] | None, parent: str | None, level: UnitLevel | None, on: date, *, exact: bool
) -> list[int]:
    """The ids of the units asked for; a named code not reached is reported at the field's path."""
    level_ = level.value if level else None
    selected = await data.select_units(info.context.loaders, codes, parent, level_, on, exact=exact)
    report_all(info, selected.problems)
    return selected.ids
