"""Catalogue types: administrative units, agencies, indicators, reporting regimes.

Scalar fields are plain attributes set once from the row; only relations have resolvers, and
each goes through a per-request DataLoader.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry
from strawberry.federation.schema_directives import Key

from nrhub.resolvers import agencies as agency_rows
from nrhub.resolvers import approval_levels
from nrhub.resolvers import indicators as indicator_rows
from nrhub.resolvers import regimes as regime_rows
from nrhub.resolvers import units as unit_rows
from nrhub.schema.approvals import ApprovalLevel
from nrhub.schema.context import Info
from nrhub.schema.relay import Node, global_id, parse_global_id
from nrhub.schema.scalars import DecimalValue, Period


@strawberry.enum(description="Administrative level.")
class UnitLevel(Enum):
    NATION = "NATION"
    PROVINCE = "PROVINCE"
    DISTRICT = "DISTRICT"
    COMMUNE = "COMMUNE"


@strawberry.enum(description="How a unit relates to the unit it became (2025 reform: Resolution 202/2025/QH15).")
class LineageRelation(Enum):
    MERGED_INTO = "MERGED_INTO"
    RENAMED = "RENAMED"
    SPLIT = "SPLIT"
    UNCHANGED = "UNCHANGED"


@strawberry.enum
class AgencyKind(Enum):
    GOVERNMENT_OFFICE = "GOVERNMENT_OFFICE"
    MINISTRY = "MINISTRY"
    MINISTERIAL_AGENCY = "MINISTERIAL_AGENCY"
    PROVINCIAL_COMMITTEE = "PROVINCIAL_COMMITTEE"
    COMMUNE_COMMITTEE = "COMMUNE_COMMITTEE"
    PARTNER = "PARTNER"


@strawberry.enum(description="A = annual, S = half-year, Q = quarterly, M = monthly, W = weekly (ISO 8601 weeks).")
class Frequency(Enum):
    A = "A"
    S = "S"
    Q = "Q"
    M = "M"
    W = "W"


@strawberry.enum(
    description="How values combine across units and periods. RATIO: sum(numerator) / "
    "sum(denominator) x factor, never a mean of rates; NONE: not combined."
)
class Aggregation(Enum):
    SUM = "SUM"
    AVERAGE = "AVERAGE"
    LAST = "LAST"
    NONE = "NONE"
    RATIO = "RATIO"


@strawberry.enum
class Sensitivity(Enum):
    PUBLIC = "PUBLIC"
    INTERNAL = "INTERNAL"
    RESTRICTED = "RESTRICTED"


@strawberry.type(
    description="A province, commune or the nation, valid between two dates. The 2025 "
    "reform reused codes, so a code names one unit on any given day.",
    # Apollo Federation entity (README, Federation): by global id, or by code and validity start.
    directives=[Key(fields="id"), Key(fields="code validFrom")],
)
class AdministrativeUnit(Node):
    code: str
    name_vi: str
    name_en: str
    level: UnitLevel
    kind: str | None
    valid_from: date
    valid_to: date | None = strawberry.field(description="Last day in force; null while in force.")
    legal_basis: str | None
    synthetic: bool = strawberry.field(description="True for demo units that do not exist.")
    _id: strawberry.Private[int]
    _parent_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, u: unit_rows.Unit) -> AdministrativeUnit:
        return cls(
            id=global_id("AdministrativeUnit", u.id),
            code=u.code,
            name_vi=u.name_vi,
            name_en=u.name_en,
            level=UnitLevel(u.level),
            kind=u.kind,
            valid_from=u.valid_from,
            valid_to=u.valid_to,
            legal_basis=u.legal_basis,
            synthetic=u.synthetic,
            _id=u.id,
            _parent_id=u.parent_id,
        )

    @classmethod
    async def resolve_reference(
        cls, info: Info, id: str | None = None, code: str | None = None, validFrom: str | None = None
    ) -> AdministrativeUnit | None:
        """An entity of a supergraph: ``{id}`` or ``{code, validFrom}``; null when there is none."""
        if id is not None:
            kind, key = parse_global_id(id)
            return await load_unit(info, int(key)) if kind == "AdministrativeUnit" and key.isdigit() else None
        if code is None or validFrom is None:
            return None
        row = await unit_rows.fetch_unit(info.context.db, code, date.fromisoformat(validFrom))
        return cls.of(row) if row is not None and row.valid_from.isoformat() == validFrom else None

    @strawberry.field(description="The unit directly above.")
    async def parent(self, info: Info) -> AdministrativeUnit | None:
        return await load_unit(info, self._parent_id)

    @strawberry.field(description="Units directly below, in force today.")
    async def children(self, info: Info) -> list[AdministrativeUnit]:
        return [AdministrativeUnit.of(u) for u in await info.context.loaders.children_by_unit.load(self._id)]

    @strawberry.field(description="The units this one was formed from (e.g. by the 2025 mergers).")
    async def predecessors(self, info: Info) -> list[UnitLineage]:
        links = await info.context.loaders.predecessors_by_unit.load(self._id)
        return [UnitLineage.of(link, link.old_unit_id) for link in links]

    @strawberry.field(description="The units this one became part of.")
    async def successors(self, info: Info) -> list[UnitLineage]:
        links = await info.context.loaders.successors_by_unit.load(self._id)
        return [UnitLineage.of(link, link.new_unit_id) for link in links]

    @strawberry.field(description="The agency governing this unit (its people's committee).")
    async def agency(self, info: Info) -> Agency | None:
        row = await info.context.loaders.agency_by_unit.load(self._id)
        return Agency.of(row) if row else None


@strawberry.type(description="One link of the reform lineage, seen from one side.")
class UnitLineage:
    relation: LineageRelation
    effective_date: date
    legal_basis: str | None
    _other_id: strawberry.Private[int]

    @classmethod
    def of(cls, link: unit_rows.Lineage, other_id: int) -> UnitLineage:
        return cls(
            relation=LineageRelation(link.relation),
            effective_date=link.effective_date,
            legal_basis=link.legal_basis,
            _other_id=other_id,
        )

    @strawberry.field(description="The unit on the other side of the link.")
    async def unit(self, info: Info) -> AdministrativeUnit:
        unit = await load_unit(info, self._other_id)
        assert unit is not None  # lineage rows reference units by foreign key
        return unit


@strawberry.type(description="A ministry, ministerial agency, provincial committee or partner.")
class Agency(Node):
    code: str
    short_code: str
    name_vi: str
    name_en: str
    kind: AgencyKind
    valid_from: date
    valid_to: date | None
    notes: str | None
    _unit_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, a: agency_rows.Agency) -> Agency:
        return cls(
            id=global_id("Agency", a.code),
            code=a.code,
            short_code=a.short_code,
            name_vi=a.name_vi,
            name_en=a.name_en,
            kind=AgencyKind(a.kind),
            valid_from=a.valid_from,
            valid_to=a.valid_to,
            notes=a.notes,
            _unit_id=a.unit_id,
        )

    @strawberry.field(description="The unit a provincial committee governs.")
    async def unit(self, info: Info) -> AdministrativeUnit | None:
        return await load_unit(info, self._unit_id)

    @strawberry.field(description="Indicators this agency is responsible for that you may read.")
    async def indicators(self, info: Info) -> list[Indicator]:
        rows = await info.context.loaders.indicators_by_agency.load(self.code)
        return [Indicator.of(r) for r in rows]


@strawberry.type(description="One of the nine fields of the national indicator set (Decision 293/QĐ-TTg).")
class Field:
    code: str
    name_vi: str
    name_en: str


@strawberry.type
class DimensionValue:
    code: str = strawberry.field(description="'_T' is the total.")
    name_vi: str
    name_en: str


@strawberry.type(description="A disaggregation dimension (SEX, URBANISATION, ...) and its codes.")
class Dimension:
    code: str
    name_vi: str
    name_en: str
    values: list[DimensionValue]


@strawberry.type(description="A socio-economic indicator of the national set.", directives=[Key(fields="code")])
class Indicator(Node):
    code: str
    name_vi: str
    name_en: str
    definition: str | None
    unit_of_measure: str
    value_type: str
    decimals: int
    periodicity: Frequency
    aggregation: Aggregation
    ratio_factor: DecimalValue | None  # type: ignore[valid-type]
    sensitivity: Sensitivity
    source: str = strawberry.field(description="'hub' for submitted reports, else a federated source.")
    source_note: str | None
    _row: strawberry.Private[indicator_rows.Indicator]

    @classmethod
    def of(cls, i: indicator_rows.Indicator) -> Indicator:
        return cls(
            id=global_id("Indicator", i.code),
            code=i.code,
            name_vi=i.name_vi,
            name_en=i.name_en,
            definition=i.definition,
            unit_of_measure=i.unit_of_measure,
            value_type=i.value_type,
            decimals=i.decimals,
            periodicity=Frequency(i.periodicity),
            aggregation=Aggregation(i.aggregation),
            ratio_factor=i.ratio_factor,
            sensitivity=Sensitivity(i.sensitivity),
            source=i.source,
            source_note=i.source_note,
            _row=i,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, code: str) -> Indicator | None:
        """An entity of a supergraph by code; null when unknown or not granted (as ``node``)."""
        row = await info.context.loaders.indicator_by_code.load(code)
        return cls.of(row) if row is not None else None

    @strawberry.field
    async def field(self, info: Info) -> Field:
        row = await info.context.loaders.field_by_code.load(self._row.field)
        assert row is not None  # foreign key
        return Field(code=row.code, name_vi=row.name_vi, name_en=row.name_en)

    @strawberry.field(description="The disaggregation dimensions, in order.")
    async def dimensions(self, info: Info) -> list[Dimension]:
        dims = await info.context.loaders.dimensions_by_indicator.load(self.code)
        return [
            Dimension(
                code=d.code,
                name_vi=d.name_vi,
                name_en=d.name_en,
                values=[DimensionValue(code=c, name_vi=v, name_en=e) for c, v, e in d.values],
            )
            for d in dims
        ]

    @strawberry.field
    async def responsible_agency(self, info: Info) -> Agency:
        return await _agency(info, self._row.responsible_agency)

    @strawberry.field(description="For RATIO indicators: the numerator (null if you may not read it).")
    async def numerator(self, info: Info) -> Indicator | None:
        return await _indicator(info, self._row.numerator_code)

    @strawberry.field(description="For RATIO indicators: the denominator (null if you may not read it).")
    async def denominator(self, info: Info) -> Indicator | None:
        return await _indicator(info, self._row.denominator_code)


async def load_unit(info: Info, unit_id: int | None) -> AdministrativeUnit | None:
    """The unit by id through the request's loader (None for no id)."""
    if unit_id is None:
        return None
    row = await info.context.loaders.unit_by_id.load(unit_id)
    return AdministrativeUnit.of(row) if row else None


async def _indicator(info: Info, code: str | None) -> Indicator | None:
    if code is None:
        return None
    row = await info.context.loaders.indicator_by_code.load(code)
    return Indicator.of(row) if row else None


@strawberry.type(description="A cell of a regime's form.")
class RegimeItem:
    disaggregation: str
    required: bool
    min_value: DecimalValue | None  # type: ignore[valid-type]
    max_value: DecimalValue | None  # type: ignore[valid-type]
    _indicator_code: strawberry.Private[str]

    @strawberry.field
    async def indicator(self, info: Info) -> Indicator | None:
        return await _indicator(info, self._indicator_code)


@strawberry.type(description="A reporting regime (chế độ báo cáo, Decree 09/2019/NĐ-CP).")
class Regime(Node):
    code: str
    name_vi: str
    name_en: str
    legal_basis: str
    frequency: Frequency = strawberry.field(
        description="The frequency of its periods; an ad-hoc regime's is that of the one period it asks for."
    )
    cutoff_start_day: int = strawberry.field(
        description="Cut-off window opens on this day of the month before the period's first month (default 15). "
        "Not used by weekly regimes (the window is the week, Monday to Sunday) nor ad-hoc ones."
    )
    cutoff_end_day: int = strawberry.field(
        description="Cut-off window closes on this day of the period's last month (default 14); not used by "
        "weekly or ad-hoc regimes."
    )
    deadline_rule: str = strawberry.field(
        description="DAYS_AFTER_CUTOFF, WORKING_DAYS_AFTER_CUTOFF (a week's cut-off is its Sunday), "
        "DAY_OF_NEXT_MONTH (not weekly), or ONE_OFF: an ad-hoc regime's deadline is `deadline`."
    )
    deadline_value: int
    observation_status: str
    allow_early: bool = strawberry.field(
        description="Whether a draft may be opened before the period's cut-off window starts."
    )
    expiry_days: int | None = strawberry.field(
        description="A report locks this many days after its deadline; null: never."
    )
    _row: strawberry.Private[regime_rows.Regime]

    @classmethod
    def of(cls, r: regime_rows.Regime) -> Regime:
        return cls(
            id=global_id("Regime", r.code),
            code=r.code,
            name_vi=r.name_vi,
            name_en=r.name_en,
            legal_basis=r.legal_basis,
            frequency=Frequency(r.frequency),
            cutoff_start_day=r.cutoff_start_day,
            cutoff_end_day=r.cutoff_end_day,
            deadline_rule=r.deadline_rule,
            deadline_value=r.deadline_value,
            observation_status=r.observation_status,
            allow_early=r.allow_early,
            expiry_days=r.expiry_days,
            _row=r,
        )

    @strawberry.field(
        description="The chain of levels a submitted report climbs, level 1 first; a regime that names none has "
        "one, its receiving agency."
    )
    async def approval_levels(self, info: Info) -> list[ApprovalLevel]:
        chain = await approval_levels.chain_of(info.context.db, self.code)
        return [ApprovalLevel.of(level, chain) for level in chain.levels]

    @strawberry.field(description="The regime whose accepted reports of the units below a report consolidates.")
    def consolidates(self) -> str | None:
        return self._row.consolidates

    @strawberry.field(
        description="Whether this is an ad-hoc (đột xuất) regime: a one-off request for one period by one deadline."
    )
    def adhoc(self) -> bool:
        return self._row.adhoc_period is not None

    @strawberry.field(description="An ad-hoc regime's one period, the only one drafts open for; null if recurring.")
    def period(self) -> Period | None:  # type: ignore[valid-type]
        return Period(self._row.adhoc_period) if self._row.adhoc_period is not None else None

    @strawberry.field(
        description="An ad-hoc regime's one-off deadline: reports submitted after it are late, whatever the "
        "holidays, and expiry days count from it; null if recurring."
    )
    def deadline(self) -> datetime | None:
        return self._row.adhoc_deadline

    @strawberry.field
    async def issuing_agency(self, info: Info) -> Agency:
        return await _agency(info, self._row.issuing_agency)

    @strawberry.field
    async def receiving_agency(self, info: Info) -> Agency:
        return await _agency(info, self._row.receiving_agency)

    @strawberry.field(description="Agencies that must report under this regime.")
    async def reporters(self, info: Info) -> list[Agency]:
        codes = await info.context.loaders.reporters_by_regime.load(self.code)
        rows = await info.context.loaders.agency_by_code.load_many(codes)
        return [Agency.of(r) for r in rows if r]

    @strawberry.field(description="The form: indicator cells you may read.")
    async def items(self, info: Info) -> list[RegimeItem]:
        rows = await info.context.loaders.items_by_regime.load(self.code)
        return [
            RegimeItem(
                disaggregation=r.dims,
                required=r.required,
                min_value=r.min_value,
                max_value=r.max_value,
                _indicator_code=r.indicator_code,
            )
            for r in rows
        ]


async def _agency(info: Info, code: str) -> Agency:
    row = await info.context.loaders.agency_by_code.load(code)
    assert row is not None  # foreign key
    return Agency.of(row)
