"""Reports in GraphQL: submissions, their workflow mutations, timeliness, value and audit history."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from nrhub.resolvers import approval_levels, approvals, follow_ups, period_locks, rules
from nrhub.resolvers import reports as report_rows
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.errors import Forbidden, NotFound
from nrhub.resolvers.validation import validate_values
from nrhub.schema.approvals import ApprovalLevel, ApprovalStep
from nrhub.schema.catalogue import AdministrativeUnit, Agency, Regime, load_unit
from nrhub.schema.context import Info
from nrhub.schema.mutating import actor_of  # noqa: F401 (re-exported for the mutations' modules)
from nrhub.schema.period_locks import ReportLock
from nrhub.schema.relay import Node, global_id
from nrhub.schema.scalars import DecimalValue, Period
from nrhub.schema.validation_rules import RuleExplanation


@strawberry.enum(
    description="DRAFT -> SUBMITTED -> ACCEPTED (-> LOCKED), or SUBMITTED -> RETURNED -> a new DRAFT; an "
    "accepted version becomes SUPERSEDED when a correction of it (its next version) is accepted. LOCKED is an "
    "accepted version whose report has locked (its regime's expiry days after the deadline, no lock exception "
    "in force): it can no longer be corrected. A draft that locks stays DRAFT, with lock.locked true."
)
class SubmissionStatus(Enum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    RETURNED = "RETURNED"
    ACCEPTED = "ACCEPTED"
    SUPERSEDED = "SUPERSEDED"
    LOCKED = "LOCKED"


@strawberry.type(description="The receiving agency's latest follow-up mark on a figure.")
class FollowUpMark:
    follow_up: bool = strawberry.field(description="Flagged for follow-up; false once cleared.")
    note: str
    marked_by: str
    marked_at: datetime


@strawberry.type
class SubmissionValue:
    unit: str
    indicator: str
    disaggregation: str
    value: DecimalValue  # type: ignore[valid-type]
    comment: str | None = strawberry.field(description="The reporter's note on the figure.")
    follow_up: FollowUpMark | None = strawberry.field(description="Null when the figure was never marked.")
    consolidated_from: list[int] | None = strawberry.field(
        description="For a figure consolidated from the accepted reports of the units below (consolidateReport): "
        "their submission ids; null for a figure entered."
    )


@strawberry.type(description="A problem of a report, with the cell it concerns.")
class Problem:
    indicator: str
    disaggregation: str
    message: str
    severity: str = strawberry.field(description="ERROR blocks submission; WARNING does not.")
    rule: str | None = strawberry.field(
        default=None, description="The validation rule breached; a WARNING one needs an explanation to submit."
    )


@strawberry.type(description="One report: a regime x reporting agency x period, in one version.")
class Submission(Node):
    submission_id: int
    period: Period  # type: ignore[valid-type]
    version: int
    created_at: datetime
    created_by: str
    deadline: datetime
    submitted_at: datetime | None = strawberry.field(description="Set by the server when submitted.")
    on_time: bool | None = strawberry.field(description="submittedAt <= deadline; null until submitted.")
    reviewed_at: datetime | None
    submitted_by: str | None = strawberry.field(description="Who submitted this version; never its reviewer.")
    reviewed_by: str | None
    return_reason: str | None
    correction_reason: str | None = strawberry.field(
        description="Set on a version that corrects the accepted one before it (correctValue)."
    )
    _row: strawberry.Private[workflow.Submission]

    @classmethod
    def of(cls, s: workflow.Submission) -> Submission:
        return cls(
            id=global_id("Submission", s.id),
            submission_id=s.id,
            period=s.period,
            version=s.version,
            created_at=s.created_at,
            created_by=s.created_by,
            deadline=s.deadline,
            submitted_at=s.submitted_at,
            on_time=s.on_time,
            reviewed_at=s.reviewed_at,
            submitted_by=s.submitted_by,
            reviewed_by=s.reviewed_by,
            return_reason=s.return_reason,
            correction_reason=s.correction_reason,
            _row=s,
        )

    @strawberry.field
    async def status(self, info: Info) -> SubmissionStatus:
        # A report locks only after its deadline: before it, no lock query (lists of reports read this per row).
        row = self._row
        if row.status == "ACCEPTED" and info.context.clock() > row.deadline and (await self._lock(info)).locked:
            return SubmissionStatus.LOCKED
        return SubmissionStatus(self._row.status)

    @strawberry.field(
        description="Whether this report may still change (it locks its regime's expiry days after its deadline)."
    )
    async def lock(self, info: Info) -> ReportLock:
        return ReportLock.of(await self._lock(info))

    async def _lock(self, info: Info) -> period_locks.Lock:
        r = self._row
        lock: period_locks.Lock = await info.context.loaders.lock_by_report.load(
            (r.regime_code, r.agency_code, r.period, r.deadline, info.context.clock())
        )
        return lock

    @strawberry.field
    async def regime(self, info: Info) -> Regime:
        row = await info.context.loaders.regime_by_code.load(self._row.regime_code)
        assert row is not None
        return Regime.of(row)

    @strawberry.field
    async def agency(self, info: Info) -> Agency:
        row = await info.context.loaders.agency_by_code.load(self._row.agency_code)
        assert row is not None
        return Agency.of(row)

    @strawberry.field
    async def unit(self, info: Info) -> AdministrativeUnit:
        unit = await load_unit(info, self._row.unit_id)
        assert unit is not None
        return unit

    @strawberry.field(
        description="The report's cells: all of them for its own agency; for anyone else, those of "
        "indicators it may read in units its region grants cover."
    )
    async def values(self, info: Info) -> list[SubmissionValue]:
        marks = await follow_ups.latest_marks(info.context.db, self._row.id)
        return [
            SubmissionValue(
                unit=v.unit_code or "",
                indicator=v.indicator_code,
                disaggregation=v.dims,
                value=v.value,
                comment=v.comment,
                follow_up=FollowUpMark(**asdict(mark)) if (mark := marks.get(report_rows.cell_key(v))) else None,
                consolidated_from=v.consolidated_from,
            )
            for v in await report_rows.readable_values(info.context.db, self._row, visibility(info))
        ]

    @strawberry.field(
        description="The decisions on this version at its regime's approval levels, oldest first: who, when, why."
    )
    async def approvals(self, info: Info) -> list[ApprovalStep]:
        return [ApprovalStep.of(s) for s in await approvals.steps_of(info.context.db, self._row.id)]

    @strawberry.field(description="The approval level a submitted report awaits; null when it awaits none.")
    async def awaiting(self, info: Info) -> ApprovalLevel | None:
        if self._row.status != "SUBMITTED":
            return None
        chain = await approval_levels.chain_of(info.context.db, self._row.regime_code)
        approved = approvals.standing(await approvals.steps_of(info.context.db, self._row.id))
        return ApprovalLevel.of(chain.at(min(len(approved) + 1, chain.last)), chain)

    @strawberry.field(description="Every version of this report, oldest first.")
    async def versions(self, info: Info) -> list[Submission]:
        return [Submission.of(s) for s in await report_rows.list_versions(info.context.db, self._row)]

    @strawberry.field(
        description="What happened to this report, oldest first: opened, values saved, submitted, "
        "reviewed, corrected (from the audit trail). Saved cells are shown as values are."
    )
    async def history(self, info: Info) -> list[AuditEntry]:
        db, seen = info.context.db, visibility(info)
        rows = await report_rows.list_subject_audit(db, f"submission:{self._row.id}")
        if not seen.reads_every_cell(self._row):
            readable = {report_rows.cell_key(v) for v in await report_rows.readable_values(db, self._row, seen)}
            rows = [report_rows.without_unreadable_cells(r, readable) for r in rows]
        return [audit_entry_of(r) for r in rows]

    @strawberry.field(description="Validation problems of the current values, shown as values are.")
    async def problems(self, info: Info) -> list[Problem]:
        # The caller's grants decide which outliers quote the history's figures.
        problems = await validate_values(info.context.db, self._row, info.context.scope)
        return [_problem(p) for p in report_rows.readable_problems(visibility(info), self._row, problems)]

    @strawberry.field(
        description="Why the report was submitted despite the WARNING validation rules it breaches, "
        "shown as its problems are."
    )
    async def explanations(self, info: Info) -> list[RuleExplanation]:
        seen = visibility(info)
        given = await rules.list_explanations(info.context.db, self._row.id)
        every, unit_id = seen.reads_every_cell(self._row), self._row.unit_id
        readable = rules.readable_explanations(given, every=every, scope=seen.scope, unit_id=unit_id)
        return [RuleExplanation(rule=e.rule_code, explanation=e.explanation) for e in readable]


def _problem(p: Any) -> Problem:
    return Problem(
        indicator=p.indicator_code, disaggregation=p.dims, message=p.message, severity=p.severity, rule=p.rule_code
    )


@strawberry.type(description="One revision of a value: who, when, why.")
class Revision:
    revision_id: int
    value: DecimalValue  # type: ignore[valid-type]
    status: str
    recorded_at: datetime
    recorded_by: str
    reason: str | None
    submission_id: int | None
    source: str | None
    current: bool


@strawberry.type(description="One entry of the append-only, hash-chained audit log.")
class AuditEntry:
    @classmethod
    def of(cls, a: report_rows.AuditRecord) -> AuditEntry:
        return audit_entry_of(a)

    seq: int
    occurred_at: datetime
    actor_agency: str | None
    actor_client: str | None
    actor_user: str | None
    action: str
    subject: str
    before: JSON | None
    after: JSON | None
    request_id: str | None
    hash: str


def visibility(info: Info) -> report_rows.Visibility:
    p = info.context.principal
    everything = p.has_scope("admin") or p.has_scope("audit:read")
    if not (everything or p.has_scope("reports:submit") or p.has_scope("reports:review")):
        raise Forbidden("reading reports needs reports:submit, reports:review, audit:read or admin")
    return report_rows.Visibility(agency=p.agency_code, everything=everything, scope=info.context.scope)


async def visible_submission(info: Info, submission_id: int) -> workflow.Submission:
    row = await workflow.fetch_submission(info.context.db, submission_id)
    if row is None:
        raise NotFound(f"there is no submission {submission_id}")
    if not await report_rows.may_see(info.context.db, visibility(info), row):
        raise Forbidden("this report belongs to another agency")
    return row


def revision_of(r: report_rows.Revision) -> Revision:
    return Revision(
        revision_id=r.id,
        value=r.value,
        status=r.status,
        recorded_at=r.recorded_at,
        recorded_by=r.recorded_by,
        reason=r.reason,
        submission_id=r.submission_id,
        source=r.source,
        current=r.current,
    )


def audit_entry_of(a: report_rows.AuditRecord) -> AuditEntry:
    return AuditEntry(
        seq=a.seq,
        occurred_at=a.occurred_at,
        actor_agency=a.actor_agency,
        actor_client=a.actor_client,
        actor_user=a.actor_user,
        action=a.action,
        subject=a.subject,
        before=a.before,
        after=a.after,
        request_id=a.request_id,
        hash=bytes(a.hash).hex(),
    )


__all__ = ["AdministrativeUnit", "AuditEntry", "Problem", "Revision", "Submission"]
