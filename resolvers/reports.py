"""The read side of reporting: submissions, timeliness and completeness, value and audit history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from resolvers.deadlines import Rule, schedule
from resolvers.errors import NotFound
from resolvers.pagination import Page, PageRequest, make_page
from resolvers.periods import Period
from resolvers.submissions import SUBMISSION_COLUMNS, Submission


@dataclass(frozen=True, slots=True)
class Visibility:
    """Whose reports a caller sees: its own agency's, those its agency receives, or all."""

    agency: str | None
    everything: bool


_SELECT_PAGE = f"""
SELECT {SUBMISSION_COLUMNS} FROM submission s
WHERE ($1::text IS NULL OR regime_code = $1) AND ($2::text IS NULL OR period = $2)
  AND ($3::text IS NULL OR agency_code = $3) AND ($4::text IS NULL OR status = $4)
  AND ($5 OR agency_code = $6 OR regime_code IN (SELECT code FROM regime WHERE receiving_agency = $6))
  AND ($7::bigint IS NULL OR id < $7)
ORDER BY id DESC LIMIT $8
"""


async def list_submissions(
    db: asyncpg.Pool,
    page: PageRequest,
    seen: Visibility,
    *,
    regime: str | None,
    period: str | None,
    agency: str | None,
    status: str | None,
) -> Page[Submission]:
    after = page.after[0] if page.after else None
    rows = await db.fetch(
        _SELECT_PAGE, regime, period, agency, status, seen.everything, seen.agency, after, page.first + 1
    )
    return make_page([Submission(**r) for r in rows], page, lambda s: (s.id,))


def may_see(seen: Visibility, submission: Submission, receiving_agency: str) -> bool:
    return seen.everything or seen.agency in (submission.agency_code, receiving_agency)


async def list_versions(db: asyncpg.Pool, submission: Submission) -> list[Submission]:
    rows = await db.fetch(
        f"SELECT {SUBMISSION_COLUMNS} FROM submission WHERE regime_code = $1 AND agency_code = $2 AND unit_id = $3"
        " AND period = $4 ORDER BY version",
        submission.regime_code,
        submission.agency_code,
        submission.unit_id,
        submission.period,
    )
    return [Submission(**r) for r in rows]


@dataclass(frozen=True, slots=True)
class Timeliness:
    agency_code: str
    deadline: datetime
    submission_id: int | None
    submitted_at: datetime | None
    on_time: bool | None
    state: str  # ON_TIME, LATE, PENDING (deadline not passed), OVERDUE (deadline passed, nothing submitted)


_SELECT_TIMELINESS = """
SELECT rr.agency_code, s.id, s.submitted_at, s.on_time
FROM regime_reporter rr
LEFT JOIN LATERAL (
    SELECT id, submitted_at, on_time FROM submission s
    WHERE s.regime_code = rr.regime_code AND s.agency_code = rr.agency_code AND s.period = $2
      AND s.submitted_at IS NOT NULL
    ORDER BY s.submitted_at LIMIT 1
) s ON true
WHERE rr.regime_code = $1 ORDER BY rr.agency_code
"""


async def timeliness(db: asyncpg.Pool, regime: str, period: str, now: datetime) -> list[Timeliness]:
    """Each expected report's state; a report's timeliness is that of its first submission."""
    rule_row = await db.fetchrow(
        "SELECT cutoff_start_day, cutoff_end_day, deadline_rule, deadline_value, frequency FROM regime WHERE code = $1",
        regime,
    )
    if rule_row is None:
        raise NotFound(f"there is no regime {regime}")
    holidays = {r["day"] for r in await db.fetch("SELECT day FROM holiday")}
    rule = Rule(*(rule_row[k] for k in ("cutoff_start_day", "cutoff_end_day", "deadline_rule", "deadline_value")))
    deadline = schedule(rule, Period.parse(period), holidays).deadline
    out = []
    for r in await db.fetch(_SELECT_TIMELINESS, regime, period):
        if r["id"] is not None:
            state = "ON_TIME" if r["on_time"] else "LATE"
        else:
            state = "OVERDUE" if now > deadline else "PENDING"
        out.append(Timeliness(r["agency_code"], deadline, r["id"], r["submitted_at"], r["on_time"], state))
    return out


@dataclass(frozen=True, slots=True)
class Revision:
    id: int
    value: Decimal
    status: str
    recorded_at: datetime
    recorded_by: str
    reason: str | None
    submission_id: int | None
    source: str | None
    current: bool


_SELECT_HISTORY = """
SELECT r.id, r.value, r.status, r.recorded_at, r.recorded_by, r.reason, r.submission_id, r.source,
       c.revision_id IS NOT NULL AS current
FROM observation_revision r
LEFT JOIN observation_current c ON c.revision_id = r.id
WHERE r.indicator_code = $1 AND r.unit_id = $2 AND r.period = $3 AND r.dims = $4
ORDER BY r.id
"""


async def value_history(db: asyncpg.Pool, indicator: str, unit_id: int, period: str, dims: str) -> list[Revision]:
    return [Revision(**r) for r in await db.fetch(_SELECT_HISTORY, indicator, unit_id, period, dims)]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    occurred_at: datetime
    actor_agency: str | None
    actor_client: str | None
    actor_user: str | None
    action: str
    subject: str
    before: Any
    after: Any
    request_id: str | None
    hash: bytes


_SELECT_AUDIT = """
SELECT seq, occurred_at, actor_agency, actor_client, actor_user, action, subject, before, after, request_id, hash
FROM audit_entry
WHERE ($1::text IS NULL OR subject = $1) AND ($2::text IS NULL OR action = $2)
  AND ($3::bigint IS NULL OR seq < $3)
ORDER BY seq DESC LIMIT $4
"""


async def list_audit(
    db: asyncpg.Pool, page: PageRequest, *, subject: str | None, action: str | None
) -> Page[AuditRecord]:
    after = page.after[0] if page.after else None
    rows = await db.fetch(_SELECT_AUDIT, subject, action, after, page.first + 1)
    return make_page([AuditRecord(**r) for r in rows], page, lambda a: (a.seq,))


async def list_subject_audit(db: asyncpg.Pool, subject: str) -> list[AuditRecord]:
    rows = await db.fetch(
        "SELECT seq, occurred_at, actor_agency, actor_client, actor_user, action, subject, before, after, request_id,"
        " hash FROM audit_entry WHERE subject = $1 ORDER BY seq",
        subject,
    )
    return [AuditRecord(**r) for r in rows]
