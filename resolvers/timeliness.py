"""Timeliness and completeness of expected reports: each reporter's state, for any regimes and periods.

An expected report is a regime's reporter for one of the regime's periods: every period of its
frequency (weeks included) for a recurring regime, and the one period it asks for for an ad-hoc
regime (migration 0018), each lying wholly within the question's range. Its state follows from
its versions (resolvers/submissions.py):

- ON_TIME or LATE: a version was submitted and not returned (accepted, awaiting review, or
  superseded by a correction); timeliness is that of the first such version against the report's
  deadline, so a report returned and submitted again after the deadline is LATE;
- RETURNED: every version submitted so far was returned, and none is awaiting review;
- PENDING before the deadline, OVERDUE after it: nothing submitted yet.

Completeness is per cell: of the form's required cells, how many the counted version fills for
the report's own unit. Who sees which reporters is the rule of every report read: the receiving
agency sees them all, a reporter itself, and anyone else the reporters whose unit its regions cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from nrhub.resolvers.deadlines import RULE_COLUMNS, Rule, schedule
from nrhub.resolvers.errors import BadUserInput, NotFound
from nrhub.resolvers.periods import WEEKLY, Period

STATES = ("ON_TIME", "LATE", "RETURNED", "PENDING", "OVERDUE")
MOST_REPORTS = 200_000  # expected reports one question may cover (34 provinces x 20 regimes x 24 months is 16,320)


@dataclass(frozen=True, slots=True)
class ExpectedReport:
    regime_code: str
    period: str
    agency_code: str
    deadline: datetime
    state: str  # one of STATES
    submission_id: int | None  # the counted version: the first submitted and not returned, else the latest
    submitted_at: datetime | None
    cells_required: int
    cells_filled: int


@dataclass(frozen=True, slots=True)
class Question:
    """Which expected reports: regimes (None: all), a period range, and optionally a unit subtree or one agency."""

    regimes: Sequence[str] | None
    first: Period
    last: Period
    unit_id: int | None = None  # reporters whose unit is this one or below it
    agency: str | None = None


@dataclass(frozen=True, slots=True)
class Viewer:
    agency: str | None
    unit_ids: tuple[int, ...] | None  # the caller's readable units; None: every unit


# One row per expected report. $1..$3 are parallel arrays, one element per (regime, period) asked.
# "Counted": the first version submitted and not returned; "latest": the newest submitted and not returned.
_SELECT = """
WITH RECURSIVE subtree AS (
    SELECT id FROM admin_unit WHERE id = $5
    UNION ALL SELECT u.id FROM admin_unit u JOIN subtree b ON u.parent_id = b.id
)
SELECT q.regime_code, q.period, rr.agency_code, q.deadline, v.counted[1] AS submission_id,
       v.submitted_at[1] AS submitted_at, v.on_time[1] AS on_time, coalesce(v.returned, false) AS returned,
       (SELECT count(*) FROM regime_item ri WHERE ri.regime_code = q.regime_code AND ri.required) AS cells_required,
       (SELECT count(*) FROM regime_item ri
        JOIN submission_value sv ON sv.submission_id = v.latest[1] AND sv.unit_id = v.latest_unit[1]
             AND sv.indicator_code = ri.indicator_code AND sv.dims = ri.dims
        WHERE ri.regime_code = q.regime_code AND ri.required) AS cells_filled
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS q (regime_code, period, deadline)
JOIN regime r ON r.code = q.regime_code
JOIN regime_reporter rr ON rr.regime_code = q.regime_code
JOIN agency a ON a.code = rr.agency_code
CROSS JOIN LATERAL (SELECT coalesce(a.unit_id, (SELECT id FROM admin_unit WHERE level = 'NATION')) AS id) au
CROSS JOIN LATERAL (
    SELECT array_agg(s.id ORDER BY s.version) FILTER (WHERE s.status NOT IN ('DRAFT', 'RETURNED')) AS counted,
           array_agg(s.submitted_at ORDER BY s.version) FILTER (WHERE s.status NOT IN ('DRAFT', 'RETURNED'))
             AS submitted_at,
           array_agg(s.on_time ORDER BY s.version) FILTER (WHERE s.status NOT IN ('DRAFT', 'RETURNED')) AS on_time,
           array_agg(s.id ORDER BY s.version DESC) FILTER (WHERE s.status NOT IN ('DRAFT', 'RETURNED')) AS latest,
           array_agg(s.unit_id ORDER BY s.version DESC) FILTER (WHERE s.status NOT IN ('DRAFT', 'RETURNED'))
             AS latest_unit,
           bool_or(s.status = 'RETURNED') AS returned
    FROM submission s
    WHERE s.regime_code = q.regime_code AND s.agency_code = rr.agency_code AND s.period = q.period
) v
WHERE ($4::text IS NULL OR rr.agency_code = $4)
  AND ($5::int IS NULL OR au.id IN (SELECT id FROM subtree))
  AND (r.receiving_agency = $6 OR rr.agency_code = $6 OR $7::int[] IS NULL OR au.id = ANY($7::int[]))
ORDER BY q.regime_code, q.period, rr.agency_code
"""


async def expected_reports(db: asyncpg.Pool, question: Question, viewer: Viewer, now: datetime) -> list[ExpectedReport]:
    """Every expected report the question covers and the viewer may see, with its state at ``now``."""
    rules = await db.fetch(
        f"SELECT code, frequency, {RULE_COLUMNS} FROM regime"
        " WHERE $1::text[] IS NULL OR code = ANY($1::text[]) ORDER BY code",
        None if question.regimes is None else list(question.regimes),
    )
    unknown = set(question.regimes or ()) - {r["code"] for r in rules}
    if unknown:
        raise NotFound(f"there is no regime {', '.join(sorted(unknown))}")
    holidays = {r["day"] for r in await db.fetch("SELECT day FROM holiday")}
    regimes, periods, deadlines = [], [], []
    for r in rules:
        rule = Rule.of(r)
        for period in regime_periods(question.first, question.last, r["frequency"], rule):
            regimes.append(r["code"])
            periods.append(str(period))
            deadlines.append(schedule(rule, period, holidays).deadline)
    if len(regimes) * 34 > MOST_REPORTS:
        raise BadUserInput("ask for fewer regimes or a shorter period range")
    rows = await db.fetch(
        _SELECT, regimes, periods, deadlines, question.agency, question.unit_id, viewer.agency, viewer.unit_ids
    )
    return [_expected(r, now) for r in rows]


def _expected(r: asyncpg.Record, now: datetime) -> ExpectedReport:
    if r["submitted_at"] is not None:
        state = "ON_TIME" if r["on_time"] else "LATE"
    elif r["returned"]:
        state = "RETURNED"
    else:
        state = "OVERDUE" if now > r["deadline"] else "PENDING"
    return ExpectedReport(
        regime_code=r["regime_code"],
        period=r["period"],
        agency_code=r["agency_code"],
        deadline=r["deadline"],
        state=state,
        submission_id=r["submission_id"],
        submitted_at=r["submitted_at"],
        cells_required=r["cells_required"],
        cells_filled=r["cells_filled"],
    )


def regime_periods(first: Period, last: Period, frequency: str, rule: Rule) -> list[Period]:
    """The periods a regime expects reports for, wholly between the start of ``first`` and the end of ``last``."""
    if rule.adhoc_period is None:
        return periods_between(first, last, frequency)
    if last.end < first.start:
        raise BadUserInput(f"the range ends ({last}) before it starts ({first})")
    asked = Period.parse(rule.adhoc_period)
    return [asked] if first.start <= asked.start and asked.end <= last.end else []


def periods_between(first: Period, last: Period, frequency: str) -> list[Period]:
    """The periods of ``frequency`` that lie wholly between the start of ``first`` and the end of ``last``."""
    if last.end < first.start:
        raise BadUserInput(f"the range ends ({last}) before it starts ({first})")
    found: list[Period] = []
    # The first period of this frequency starting on or after ``first``'s start.
    if frequency == WEEKLY:
        candidate = Period.week_of(first.start)
    else:
        candidate = Period(first.start.year, 1, frequency)
    while candidate.start < first.start:
        candidate = candidate.next()
    while candidate.end <= last.end:
        found.append(candidate)
        candidate = candidate.next()
    return found


@dataclass(frozen=True, slots=True)
class Counts:
    """Expected reports rolled up: by state, with rates over the expected count."""

    expected: int
    counts: dict[str, int]
    cells_required: int
    cells_filled: int

    @classmethod
    def of(cls, reports: Sequence[ExpectedReport]) -> Counts:
        counts = dict.fromkeys(STATES, 0)
        for report in reports:
            counts[report.state] += 1
        return cls(
            len(reports),
            counts,
            sum(r.cells_required for r in reports),
            sum(r.cells_filled for r in reports),
        )

    @property
    def submitted(self) -> int:
        return self.counts["ON_TIME"] + self.counts["LATE"]

    def rate(self, count: int) -> float:
        return count / self.expected if self.expected else 0.0
