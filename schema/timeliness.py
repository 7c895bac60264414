"""Timeliness and completeness in GraphQL: one regime's period, or any regimes, periods and units at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Annotated

import strawberry

from nrhub.resolvers import timeliness as rows
from nrhub.resolvers import units
from nrhub.resolvers.errors import BadUserInput, NotFound
from nrhub.resolvers.periods import Period as ParsedPeriod
from nrhub.schema.context import Info
from nrhub.schema.reports import visibility
from nrhub.schema.scalars import Period


@strawberry.enum(
    description="ON_TIME or LATE once submitted (a returned version does not count; a report returned and "
    "submitted again after its deadline is LATE); RETURNED while every submitted version was returned; "
    "before that PENDING, or OVERDUE after the deadline."
)
class TimelinessState(Enum):
    ON_TIME = "ON_TIME"
    LATE = "LATE"
    RETURNED = "RETURNED"
    PENDING = "PENDING"
    OVERDUE = "OVERDUE"


@strawberry.type(description="One expected report: a regime's reporter for one period.")
class ExpectedReport:
    regime: str
    period: Period  # type: ignore[valid-type]
    agency_code: str
    deadline: datetime
    state: TimelinessState
    submitted_at: datetime | None = strawberry.field(description="When the counted version was submitted.")
    submission_id: int | None = strawberry.field(
        description="The counted version: the first submitted and not returned."
    )
    cells_required: int = strawberry.field(description="The form's required cells.")
    cells_filled: int = strawberry.field(
        description="Required cells the latest submitted version fills for the report's own unit."
    )

    @classmethod
    def of(cls, r: rows.ExpectedReport) -> ExpectedReport:
        return cls(
            regime=r.regime_code,
            period=Period(r.period),
            agency_code=r.agency_code,
            deadline=r.deadline,
            state=TimelinessState(r.state),
            submitted_at=r.submitted_at,
            submission_id=r.submission_id,
            cells_required=r.cells_required,
            cells_filled=r.cells_filled,
        )


@strawberry.type(description="Expected reports counted by state, with rates over the expected count.")
class ReportCounts:
    expected: int
    submitted: int = strawberry.field(description="ON_TIME + LATE.")
    on_time: int
    late: int
    returned: int
    pending: int
    overdue: int
    missing: int = strawberry.field(description="expected - submitted: RETURNED, PENDING and OVERDUE.")
    submitted_rate: float
    on_time_rate: float
    completeness: float = strawberry.field(description="Required cells filled over required cells expected.")

    @classmethod
    def of(cls, reports: Sequence[rows.ExpectedReport]) -> ReportCounts:
        c = rows.Counts.of(reports)
        return cls(
            expected=c.expected,
            submitted=c.submitted,
            on_time=c.counts["ON_TIME"],
            late=c.counts["LATE"],
            returned=c.counts["RETURNED"],
            pending=c.counts["PENDING"],
            overdue=c.counts["OVERDUE"],
            missing=c.expected - c.submitted,
            submitted_rate=c.rate(c.submitted),
            on_time_rate=c.rate(c.counts["ON_TIME"]),
            completeness=c.cells_filled / c.cells_required if c.cells_required else 1.0,
        )


@strawberry.type(description="Timeliness and completeness of a regime's reports for one period.")
class Timeliness:
    regime: str
    period: Period  # type: ignore[valid-type]
    expected: int
    submitted: int
    on_time: int
    late: int
    returned: int
    missing: int
    submitted_rate: float
    on_time_rate: float
    counts: ReportCounts
    reports: list[ExpectedReport]


@strawberry.type(description="Counts of one group: a regime's period (the trend), a regime, or a reporter.")
class ReportGroup:
    regime: str | None
    period: Period | None  # type: ignore[valid-type]
    agency_code: str | None
    counts: ReportCounts


@strawberry.type(description="Timeliness and completeness across regimes, periods and reporters.")
class ReportingRates:
    total: ReportCounts
    by_period: list[ReportGroup] = strawberry.field(description="Per regime and period, in period order: the trend.")
    by_regime: list[ReportGroup]
    by_agency: list[ReportGroup]
    reports: list[ExpectedReport] = strawberry.field(description="The expected reports in the states asked for.")


@strawberry.type
class TimelinessQueries:
    @strawberry.field(
        description="Expected, submitted, on-time, late, returned and missing reports of a regime for one of "
        "its periods, with rates and each reporter's state: every reporter for the receiving agency, else "
        "yourself and the reporters whose units your region grants cover."
    )
    async def timeliness(self, info: Info, regime: str, period: Period) -> Timeliness | None:  # type: ignore[valid-type]
        parsed = ParsedPeriod.parse(period)
        found = await _expected(info, rows.Question([regime], parsed, parsed))
        frequency = await info.context.db.fetchval("SELECT frequency FROM regime WHERE code = $1", regime)
        if frequency != parsed.frequency:
            raise BadUserInput(f"regime {regime} is reported per {frequency} period, not {period}")
        c = ReportCounts.of(found)
        return Timeliness(
            regime=regime,
            period=period,
            expected=c.expected,
            submitted=c.submitted,
            on_time=c.on_time,
            late=c.late,
            returned=c.returned,
            missing=c.missing,
            submitted_rate=c.submitted_rate,
            on_time_rate=c.on_time_rate,
            counts=c,
            reports=[ExpectedReport.of(r) for r in found],
        )

    @strawberry.field(
        description="Timeliness and completeness for any regimes (all when omitted), the periods of each that "
        "lie wholly within from..to, and a unit's subtree or one reporting agency: totals, the trend per "
        "regime and period, per regime and per reporter, and the expected reports in the states asked for "
        "(all when omitted). Who sees which reporters is as for `timeliness`."
    )
    async def reporting_rates(
        self,
        info: Info,
        from_: Annotated[Period, strawberry.argument(name="from")],  # type: ignore[valid-type]
        to: Period,  # type: ignore[valid-type]
        regimes: list[str] | None = None,
        unit: str | None = None,
        agency: str | None = None,
        states: list[TimelinessState] | None = None,
    ) -> ReportingRates:
        unit_id = None
        if unit is not None:
            row = await units.fetch_unit(info.context.db, unit, info.context.today)
            if row is None:
                raise NotFound(f"there is no unit {unit} in force today")
            unit_id = row.id
        question = rows.Question(regimes, ParsedPeriod.parse(from_), ParsedPeriod.parse(to), unit_id, agency)
        found = await _expected(info, question)
        wanted = {s.value for s in states} if states is not None else None
        return ReportingRates(
            total=ReportCounts.of(found),
            by_period=_groups(found, lambda r: (r.regime_code, r.period, None)),
            by_regime=_groups(found, lambda r: (r.regime_code, None, None)),
            by_agency=_groups(found, lambda r: (None, None, r.agency_code)),
            reports=[ExpectedReport.of(r) for r in found if wanted is None or r.state in wanted],
        )


async def _expected(info: Info, question: rows.Question) -> list[rows.ExpectedReport]:
    seen = visibility(info)
    viewer = rows.Viewer(seen.agency, seen.scope.unit_ids)
    return await rows.expected_reports(info.context.db, question, viewer, info.context.clock())


GroupKey = tuple[str | None, str | None, str | None]  # (regime, period, agency)


def _groups(found: Sequence[rows.ExpectedReport], key: Callable[[rows.ExpectedReport], GroupKey]) -> list[ReportGroup]:
    grouped: dict[GroupKey, list[rows.ExpectedReport]] = {}
    for report in found:
        grouped.setdefault(key(report), []).append(report)
    return [
        ReportGroup(
            regime=regime,
            period=Period(period) if period else None,
            agency_code=agency,
            counts=ReportCounts.of(reports),
        )
        for (regime, period, agency), reports in sorted(grouped.items(), key=lambda item: _in_order(item[0]))
    ]


def _in_order(key: GroupKey) -> tuple[str, date, str]:
    """Regimes and agencies by code, a regime's periods in time order."""
    regime, period, agency = key
    return regime or "", ParsedPeriod.parse(period).start if period else date.min, agency or ""
