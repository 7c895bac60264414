"""Data types: single observations, the dashboard table, series and aggregates."""

from __future__ import annotations

from enum import Enum

import strawberry

from nrhub.resolvers import aggregate_rule as aggregate_rows
from nrhub.resolvers import observations as observation_rows
from nrhub.schema.catalogue import AdministrativeUnit, Indicator, load_unit
from nrhub.schema.context import Info
from nrhub.schema.relay import Node, global_id
from nrhub.schema.scalars import DataBlock, DecimalValue, Period


@strawberry.enum(description="How final a value is.")
class ObservationStatus(Enum):
    ESTIMATE = "ESTIMATE"
    PRELIMINARY = "PRELIMINARY"
    OFFICIAL = "OFFICIAL"


@strawberry.enum
class ProvenanceKind(Enum):
    SUBMISSION = "SUBMISSION"
    SOURCE = "SOURCE"
    COMPUTED = "COMPUTED"


@strawberry.type(description="Where a value came from.")
class Provenance:
    kind: ProvenanceKind
    submission_id: strawberry.ID | None = None
    source: str | None = None
    stored_parts: int | None = strawberry.field(
        default=None, description="For COMPUTED values: how many stored observations were combined."
    )
    stale: bool = strawberry.field(
        default=False,
        description="True for a source's value served from the hub's cache while the source could not answer.",
    )
    age_seconds: int | None = strawberry.field(
        default=None, description="For stale values: seconds since the source gave the value."
    )
    consolidated_from: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="For a value of a report consolidated from the accepted reports of the units below "
        "(consolidateReport): their submission ids.",
    )


@strawberry.type(description="The current value of one key: indicator x unit x period x disaggregation.")
class Observation(Node):
    period: Period  # type: ignore[valid-type]
    disaggregation: str = strawberry.field(description="Non-total cells, e.g. 'SEX=F|URBANISATION=U'; '' is the total.")
    value: DecimalValue  # type: ignore[valid-type]
    status: ObservationStatus
    _row: strawberry.Private[observation_rows.Observation]
    _computed_parts: strawberry.Private[int | None] = None  # a rate computed from this many stored values

    @classmethod
    def of(cls, o: observation_rows.Observation, computed_parts: int | None = None) -> Observation:
        return cls(
            period=o.period,
            disaggregation=o.dims,
            value=o.value,
            status=ObservationStatus[o.status],  # by name (the same as the value): a dict lookup
            _row=o,
            _computed_parts=computed_parts,
        )

    @strawberry.field
    def id(self) -> strawberry.ID:
        # Made when asked for, like provenance. A source's value has no revision: its id is its key
        # (node() asks the source again).
        o = self._row
        key = o.revision_id if o.revision_id is not None else f"{o.indicator_code}:{o.unit_id}:{o.period}:{o.dims}"
        return global_id("Observation", key)

    @strawberry.field
    async def provenance(self, info: Info) -> Provenance:
        # Made when asked for: most queries of values do not ask where each came from.
        o = self._row
        if self._computed_parts is not None:
            return Provenance(kind=ProvenanceKind.COMPUTED, stored_parts=self._computed_parts)
        if o.submission_id is not None:
            sources = await info.context.loaders.consolidated_from_by_revision.load(o.revision_id)
            return Provenance(
                kind=ProvenanceKind.SUBMISSION,
                submission_id=strawberry.ID(str(o.submission_id)),
                consolidated_from=[strawberry.ID(str(s)) for s in sources] if sources else None,
            )
        return Provenance(
            kind=ProvenanceKind.SOURCE, source=o.source, stale=o.stale_age is not None, age_seconds=o.stale_age
        )

    @strawberry.field
    async def indicator(self, info: Info) -> Indicator:
        row = await info.context.loaders.indicator_by_code.load(self._row.indicator_code)
        assert row is not None  # only readable indicators' observations are returned
        return Indicator.of(row)

    @strawberry.field
    async def unit(self, info: Info) -> AdministrativeUnit:
        unit = await load_unit(info, self._row.unit_id)
        assert unit is not None  # foreign key
        return unit

    @strawberry.field(description="The indicator's unit of measure.")
    async def unit_of_measure(self, info: Info) -> str:
        row = await info.context.loaders.indicator_by_code.load(self._row.indicator_code)
        assert row is not None
        return row.unit_of_measure


@strawberry.type(description="Indicators (columns) x units (rows) for one period, as one compact block.")
class Table:
    period: Period | None = strawberry.field(  # type: ignore[valid-type]
        description="The period asked for; null when each cell holds its series' latest period."
    )
    columns: list[Indicator] = strawberry.field(
        description="The columns, in order: the requested indicators you may read."
    )
    rows: DataBlock = strawberry.field(  # type: ignore[valid-type]
        description="JSON array, one object per unit: {unit: code, values: [number|null per column], "
        "periods: [period|null], statuses: [status|null], provenance: ['submission:<id>' | "
        "'source:<name>' | 'source:<name>;stale;age=<seconds>' | 'computed:<parts>' | null]}. A rate "
        "(RATIO) not stored is computed from its components (provenance 'computed'), when you may read "
        "both components or neither. Cells of a source that cannot answer are null, with a "
        "SOURCE_UNAVAILABLE error naming it."
    )


@strawberry.type(description="One indicator over many units and periods, as one compact block.")
class Series:
    indicator: Indicator
    disaggregation: str
    periods: list[Period]  # type: ignore[valid-type]
    rows: DataBlock = strawberry.field(  # type: ignore[valid-type]
        description="JSON array, one object per unit: {unit: code, values: [number|null per period], "
        "statuses: [...], provenance: ['submission:<id>' | 'source:<name>' | "
        "'source:<name>;stale;age=<seconds>' | 'computed:<parts>' | null]}. Periods before a unit "
        "existed are computed through the lineage of the units it was formed from (provenance "
        "'computed'); not for indicators a source serves, whose values count only while the unit was in force. "
        "A rate (RATIO) not stored is computed from its components, when you may read both or neither."
    )


@strawberry.type(description="A value for any unit and period, computed by the indicator's rule.")
class Aggregate:
    indicator: Indicator
    unit: AdministrativeUnit
    period: Period  # type: ignore[valid-type]
    disaggregation: str
    value: DecimalValue | None = strawberry.field(  # type: ignore[valid-type]
        description="Null when some of the parts are missing or the rule is NONE. A mean (AVERAGE) and a "
        "rate (RATIO) are rounded to the indicator's decimals where they are computed, half away from zero; "
        "a mean of means uses the rounded means; a stored value keeps its digits."
    )
    status: ObservationStatus | None = strawberry.field(description="The least final status of the parts.")
    unit_of_measure: str
    provenance: Provenance

    @classmethod
    def of(
        cls,
        indicator: Indicator,
        unit: AdministrativeUnit,
        period: str,
        dims: str,
        result: aggregate_rows.Aggregate,
    ) -> Aggregate:
        return cls(
            indicator=indicator,
            unit=unit,
            period=period,
            disaggregation=dims,
            value=result.value,
            status=ObservationStatus(result.status) if result.status else None,
            unit_of_measure=indicator.unit_of_measure,
            provenance=Provenance(
                kind=ProvenanceKind.COMPUTED,
                source=result.source,
                stored_parts=result.stored_parts,
                stale=result.stale_age is not None,
                age_seconds=result.stale_age,
            ),
        )
