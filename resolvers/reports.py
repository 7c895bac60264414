"""The read side of reporting: submissions, value and audit history (timeliness: resolvers/timeliness.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from nrhub.resolvers.pagination import Page, PageRequest, make_page
from nrhub.resolvers.queryable import Queryable
from nrhub.resolvers.scope import Scope
from nrhub.resolvers.submissions import SUBMISSION_COLUMNS, CellValue, Submission
from nrhub.resolvers.validation import Problem


@dataclass(frozen=True, slots=True)
class Visibility:
    """Whose reports a caller sees: its own agency's, those its agency receives, and with
    ``everything`` (audit:read, admin) every other agency's whose unit ``scope``'s regions cover."""

    agency: str | None
    everything: bool
    scope: Scope  # the caller's grants: its regions limit ``everything``; its cells, what it reads of a report

    def reads_every_cell(self, submission: Submission) -> bool:
        """The report's own agency entered its figures (and may change a draft's): it sees them all.
        Anyone else sees the cells its indicator and region grants cover, like any other value."""
        return self.agency == submission.agency_code


# A status asked for is the one shown (schema/reports.py): an accepted version whose report has locked is LOCKED.
_SELECT_PAGE = f"""
SELECT {SUBMISSION_COLUMNS} FROM submission s
WHERE ($1::text IS NULL OR regime_code = $1) AND ($2::text IS NULL OR period = $2)
  AND ($3::text IS NULL OR agency_code = $3)
  AND ($4::text IS NULL OR $4 = CASE WHEN status = 'ACCEPTED' AND report_locked(regime_code, agency_code, period,
                                                                               deadline, $10)
                                     THEN 'LOCKED' ELSE status END)
  AND (($5 AND ($9::int[] IS NULL OR unit_id = ANY($9::int[])))
       OR agency_code = $6 OR regime_code IN (SELECT code FROM regime WHERE receiving_agency = $6)
       OR (regime_code IN (SELECT regime_code FROM regime_level WHERE acted_by <> 'AGENCY' OR agency_code = $6)
           AND $6 = ANY(report_approvers(regime_code, agency_code, unit_id))))
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
    now: datetime,
) -> Page[Submission]:
    after = page.after[0] if page.after else None
    rows = await db.fetch(
        _SELECT_PAGE,
        regime,
        period,
        agency,
        status,
        seen.everything,
        seen.agency,
        after,
        page.first + 1,
        seen.scope.unit_ids,
        now,
    )
    return make_page([Submission(**r) for r in rows], page, lambda s: (s.id,))


async def may_see(db: Queryable, seen: Visibility, submission: Submission) -> bool:
    """Its own agency, its receiving agency and the agencies of its approval levels see a report;
    audit:read and admin see those of the units their regions cover."""
    if seen.agency == submission.agency_code or (seen.everything and seen.scope.covers_unit(submission.unit_id)):
        return True
    return bool(await db.fetchval(_SEES_AS_DECIDER, seen.agency, submission.regime_code, submission.agency_code,
                                  submission.unit_id))  # fmt: skip


_SEES_AS_DECIDER = """
SELECT $1 = receiving_agency OR $1 = ANY(report_approvers($2, $3, $4)) FROM regime WHERE code = $2
"""


# A report's cells: all of them for its own agency ($2), else those of readable indicators in
# covered units, the condition every read of values applies to the caller's scope.
_SELECT_VALUES = """
SELECT v.indicator_code, v.dims, v.value, u.code AS unit_code, v.comment, v.consolidated_from
FROM submission_value v JOIN admin_unit u ON u.id = v.unit_id
WHERE v.submission_id = $1
  AND ($2 OR (v.indicator_code = ANY($3::text[]) AND ($4::int[] IS NULL OR v.unit_id = ANY($4::int[]))))
ORDER BY u.code, v.indicator_code, v.dims
"""


async def readable_values(db: asyncpg.Pool, submission: Submission, seen: Visibility) -> list[CellValue]:
    """The cells of ``submission`` the caller may read."""
    every = seen.reads_every_cell(submission)
    rows = await db.fetch(_SELECT_VALUES, submission.id, every, seen.scope.indicators, seen.scope.unit_ids)
    return [CellValue(**r) for r in rows]


def readable_problems(seen: Visibility, submission: Submission, problems: list[Problem]) -> list[Problem]:
    """The problems of ``submission`` the caller may see (they quote figures). Validation needs every
    cell (parts add up to totals), so its answer is cut here. A problem names its indicator, not its
    unit, so another agency's reader sees those of readable indicators, and only when its regions
    cover the report's unit (and so every unit below it)."""
    if seen.reads_every_cell(submission):
        return problems
    if not seen.scope.covers_unit(submission.unit_id):
        return []
    # A validation rule's problem quotes every indicator the rule names (resolvers/rules.py).
    return [p for p in problems if all(seen.scope.may_read(c) for c in p.indicators or (p.indicator_code,))]


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


def cell_key(cell: CellValue) -> str:
    """How a "values saved" audit entry names a cell (resolvers.submissions)."""
    return f"{cell.unit_code}|{cell.indicator_code}|{cell.dims}"


# Entries whose before and after are keyed by cell (cell_key): values saved, comments, follow-up marks.
CELL_KEYED_ACTIONS = frozenset({"submission.values", "submission.comments", "submission.follow_up"})


def without_unreadable_cells(entry: AuditRecord, readable: set[str]) -> AuditRecord:
    """A cell-keyed entry as a caller who may read only the ``readable`` cells sees it: its before
    and after hold those cells only (a save of many cells records a count and a digest of them all,
    which a reader who knows all cells but one could test guesses against: left out too). The
    entry's hash stays that of the whole entry."""
    if entry.action not in CELL_KEYED_ACTIONS:
        return entry
    before, after = (
        None if cells is None else {k: v for k, v in cells.items() if k in readable}
        for cells in (entry.before, entry.after)
    )
    return dataclasses.replace(entry, before=before, after=after)
