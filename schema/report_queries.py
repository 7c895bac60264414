"""Root fields about reports: submissions, value history and the audit trail (timeliness: schema/timeliness.py)."""

from __future__ import annotations

from datetime import date

import strawberry

from nrhub.resolvers import reports as report_rows
from nrhub.resolvers import units
from nrhub.resolvers.errors import Forbidden, NotFound
from nrhub.schema.context import Info
from nrhub.schema.relay import Connection
from nrhub.schema.reports import (
    AuditEntry,
    Revision,
    Submission,
    SubmissionStatus,
    revision_of,
    visibility,
    visible_submission,
)
from nrhub.schema.scalars import Period
from nrhub.schema.selection import After, First, indicator_or_raise, page_of


@strawberry.type
class ReportQueries:
    @strawberry.field(
        description="Reports you may see: your agency's, those your agency receives, or, with "
        "audit:read or admin, all in the regions your grants cover. Newest first."
    )
    async def submissions(
        self,
        info: Info,
        regime: str | None = None,
        period: Period | None = None,  # type: ignore[valid-type]
        agency: str | None = None,
        status: SubmissionStatus | None = None,
        first: First = None,
        after: After = None,
    ) -> Connection[Submission]:
        page = await report_rows.list_submissions(
            info.context.db,
            page_of(info, first, after),
            visibility(info),
            regime=regime,
            period=period,
            agency=agency,
            status=status.value if status else None,
            now=info.context.clock(),
        )
        return Connection.of(page, Submission)

    @strawberry.field
    async def submission(self, info: Info, submission_id: int) -> Submission | None:
        return Submission.of(await visible_submission(info, submission_id))

    @strawberry.field(description="Every revision of one value, oldest first: who, when, why.")
    async def value_history(
        self,
        info: Info,
        indicator: str,
        unit: str,
        period: Period,  # type: ignore[valid-type]
        disaggregation: str = "",
        unit_valid_on: date | None = None,
    ) -> list[Revision] | None:
        if not info.context.scope.may_read(indicator):
            await indicator_or_raise(info, indicator)
        row = await units.fetch_unit(info.context.db, unit, unit_valid_on or info.context.today)
        if row is None:
            raise NotFound(f"there is no unit {unit} in force on that date")
        if not info.context.scope.covers_unit(row.id):
            raise Forbidden(f"you may not read values for unit {unit}")
        history = await report_rows.value_history(info.context.db, indicator, row.id, period, disaggregation)
        return [revision_of(r) for r in history]

    @strawberry.field(description="The audit log, newest first (audit:read).")
    async def audit_trail(
        self,
        info: Info,
        subject: str | None = None,
        action: str | None = None,
        first: First = None,
        after: After = None,
    ) -> Connection[AuditEntry] | None:
        if not (info.context.principal.has_scope("audit:read") or info.context.principal.has_scope("admin")):
            raise Forbidden("the audit trail needs the audit:read scope")
        page = await report_rows.list_audit(
            info.context.db, page_of(info, first, after), subject=subject, action=action
        )
        return Connection.of(page, AuditEntry)
