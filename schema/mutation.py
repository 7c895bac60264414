"""The Mutation root: the reporting workflow. Every mutation takes an idempotency key.

Scopes are checked before anything is read or written: a read-only token gets FORBIDDEN and
nothing changes. The agency a client acts for is the one its token names, never an argument.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry

from nrhub.resolvers import approvals, consolidation, follow_ups
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.approval_levels import Level
from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.regime_admin import ItemSpec, RegimeSpec, upsert_regime
from nrhub.resolvers.rules import store_explanations
from nrhub.schema.approvals import LevelActor
from nrhub.schema.catalogue import Regime
from nrhub.schema.context import Info
from nrhub.schema.mutating import Key, require_scope, run_idempotent
from nrhub.schema.period_locks import LockMutations
from nrhub.schema.reports import Problem, Submission, actor_of, visible_submission
from nrhub.schema.scalars import DecimalValue, Period
from nrhub.schema.validation_rules import Explanations, RuleMutations, explanations_of
from nrhub.schema.webhooks import WebhookMutations


@strawberry.input(description="One cell of a report.")
class CellInput:
    indicator: str
    value: DecimalValue  # type: ignore[valid-type]
    disaggregation: str = ""
    unit: str | None = strawberry.field(
        default=None,
        description="The report's own unit when omitted; "
        "else a unit directly below it (a commune of a province's report).",
    )
    comment: str | None = strawberry.field(
        default=None,
        description="A note on the figure for reviewers (up to 2,000 characters); a cell's comment is as last saved.",
    )


@strawberry.input(description="A cell of a regime's form.")
class RegimeItemInput:
    indicator: str
    disaggregation: str = ""
    required: bool = True
    min_value: DecimalValue | None = None  # type: ignore[valid-type]
    max_value: DecimalValue | None = None  # type: ignore[valid-type]


@strawberry.input(description="One level of a regime's approval chain.")
class ApprovalLevelInput:
    name_vi: str
    name_en: str
    acted_by: LevelActor
    agency: str | None = strawberry.field(default=None, description="For an AGENCY level: the agency deciding.")


@strawberry.input(description="A whole reporting regime; an existing one with this code is replaced.")
class RegimeInput:
    code: str
    name_vi: str
    name_en: str
    legal_basis: str
    issuing_agency: str
    receiving_agency: str
    frequency: str = strawberry.field(
        description="M, Q, S, A or W (ISO weeks); or ADHOC for a one-off request, with period and deadline."
    )
    deadline_rule: str | None = strawberry.field(
        default=None,
        description="A recurring regime's: DAYS_AFTER_CUTOFF, WORKING_DAYS_AFTER_CUTOFF (for a week, counted from "
        "its Sunday) or DAY_OF_NEXT_MONTH (not for a week). Left out of an ad-hoc regime.",
    )
    deadline_value: int | None = strawberry.field(
        default=None, description="The days of the deadline rule, or the day of the month; required with it."
    )
    reporters: list[str] = strawberry.field(description='Agency codes, or ["PROVINCES"].')
    items: list[RegimeItemInput]
    cutoff_start_day: int = 15
    cutoff_end_day: int = 14
    observation_status: str = "OFFICIAL"
    jump_threshold: DecimalValue | None = None  # type: ignore[valid-type]
    allow_early: bool = strawberry.field(
        default=False, description="Whether a draft may be opened before the period's cut-off window starts."
    )
    expiry_days: int | None = strawberry.field(
        default=None, description="A report locks this many days after its deadline; null: never."
    )
    period: Period | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="An ad-hoc regime's one period (any period); drafts open for it alone, at once."
    )
    deadline: datetime | None = strawberry.field(
        default=None,
        description="An ad-hoc regime's one-off deadline, with its offset (2026-11-05T17:00:00+07:00); "
        "holidays do not move it, and expiry days count from it.",
    )
    approval_levels: list[ApprovalLevelInput] = strawberry.field(
        default_factory=list,
        description="The chain of levels a submitted report climbs, level 1 first; none: the receiving agency "
        "decides alone.",
    )
    publish_level: int | None = strawberry.field(
        default=None, description="The level whose approval makes the values current observations; null: the last."
    )
    consolidates: str | None = strawberry.field(
        default=None,
        description="The regime whose accepted reports of the units below a report's unit consolidateReport combines.",
    )


@strawberry.enum(
    description="A decision at the approval level a report awaits: ACCEPT approves it (the last level's approval "
    "accepts the report), RETURN sends it back one level (at the first level, to its reporter, as a new draft), "
    "UNAPPROVE takes back your level's approval while the next level has not acted."
)
class ReviewDecision(Enum):
    ACCEPT = "ACCEPT"
    RETURN = "RETURN"
    UNAPPROVE = "UNAPPROVE"


_DECISIONS = {
    ReviewDecision.ACCEPT: approvals.Decision.APPROVE,
    ReviewDecision.RETURN: approvals.Decision.RETURN,
    ReviewDecision.UNAPPROVE: approvals.Decision.UNAPPROVE,
}


@strawberry.type(description="A draft filled from the accepted reports of the units below its own.")
class ConsolidationResult:
    submission: Submission
    sources: list[int] = strawberry.field(description="The accepted reports combined (submission ids).")
    missing_units: list[str] = strawberry.field(
        description="Codes of the units below without an accepted report for the period: not in the figures."
    )
    cells: int = strawberry.field(description="How many form cells were filled.")


@strawberry.type(description="The outcome of saving values: the draft, and the cells refused with why.")
class SaveValuesResult:
    submission: Submission
    problems: list[Problem]


async def _submission(info: Info, result: dict[str, Any]) -> Submission:
    return Submission.of(await visible_submission(info, int(result["submission"])))


@strawberry.type
class Mutation(LockMutations, WebhookMutations, RuleMutations):
    @strawberry.mutation(description="Open (or get) your agency's draft for a regime and period.")
    async def open_draft(self, info: Info, regime: str, period: Period, idempotency_key: Key) -> Submission | None:  # type: ignore[valid-type]
        require_scope(info, "reports:submit")
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, Any]:
            return {"submission": (await workflow.open_draft(conn, actor, regime=regime, period=period, now=now)).id}

        return await _submission(
            info, await run_idempotent(info, idempotency_key, "openDraft", {"regime": regime, "period": period}, change)
        )

    @strawberry.mutation(description="Save cells of a draft (exact decimals); cells outside the form are refused.")
    async def save_values(
        self, info: Info, submission_id: int, values: list[CellInput], idempotency_key: Key
    ) -> SaveValuesResult | None:
        require_scope(info, "reports:submit")
        if len(values) > 50_000:
            raise BadUserInput("save at most 50,000 cells at once")
        cells = [workflow.CellValue(v.indicator, v.disaggregation, Decimal(v.value), v.unit, v.comment) for v in values]
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, Any]:
            _, problems = await workflow.save_values(conn, actor, submission_id, cells, now=now)
            return {
                "submission": submission_id,
                "problems": [[p.indicator_code, p.dims, p.message, p.severity] for p in problems],
            }

        request = {
            "submission": submission_id,
            "values": [[c.unit_code, c.indicator_code, c.dims, c.value, c.comment] for c in cells],
        }
        result = await run_idempotent(info, idempotency_key, "saveValues", request, change)
        problems = [Problem(indicator=i, disaggregation=d, message=m, severity=s) for i, d, m, s in result["problems"]]
        return SaveValuesResult(submission=await _submission(info, result), problems=problems)

    @strawberry.mutation(description="Submit a draft: the server records submittedAt and whether it was on time.")
    async def submit_report(
        self,
        info: Info,
        submission_id: int,
        idempotency_key: Key,
        explanations: Explanations = None,
    ) -> Submission | None:
        require_scope(info, "reports:submit")
        actor, now = actor_of(info), info.context.clock()
        explained = explanations_of(explanations)

        async def change(conn: Any) -> dict[str, Any]:
            # Kept in the submitting transaction, checked against the warnings by the workflow's _submit.
            await store_explanations(conn, actor, submission_id, explained)
            return {"submission": (await workflow.submit(conn, actor, submission_id, now=now)).id}

        request = {"submission": submission_id, **({"explanations": explained} if explained else {})}
        return await _submission(info, await run_idempotent(info, idempotency_key, "submitReport", request, change))

    @strawberry.mutation(
        description="Decide at the approval level the report awaits (reports:review; the level's agency, never "
        "whoever submitted it): ACCEPT, RETURN with a reason, or UNAPPROVE. The regime's publishing level (its last "
        "unless it names another) makes the values current observations; every decision shows in `approvals`."
    )
    async def review_report(
        self, info: Info, submission_id: int, decision: ReviewDecision, idempotency_key: Key, reason: str | None = None
    ) -> Submission | None:
        require_scope(info, "reports:review")
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, Any]:
            decided = await approvals.decide(conn, actor, submission_id, _DECISIONS[decision], reason, now=now)
            return {"submission": decided.submission.id}

        request = {"submission": submission_id, "decision": decision.value, "reason": reason}
        return await _submission(info, await run_idempotent(info, idempotency_key, "reviewReport", request, change))

    @strawberry.mutation(
        description="Fill your draft's cells from the accepted reports, for the same period, of the units directly "
        "below your report's unit, under the regime it consolidates: each cell by its indicator's aggregation rule. "
        "The cells are saved as your own save would be and show the reports they came from (provenance)."
    )
    async def consolidate_report(
        self, info: Info, submission_id: int, idempotency_key: Key
    ) -> ConsolidationResult | None:
        require_scope(info, "reports:submit")
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, Any]:
            done = await consolidation.consolidate(conn, actor, submission_id, now=now)
            return {"submission": done.submission.id, "sources": done.sources, "missing": done.missing,
                    "cells": done.cells}  # fmt: skip

        result = await run_idempotent(info, idempotency_key, "consolidateReport", {"submission": submission_id}, change)
        return ConsolidationResult(
            submission=await _submission(info, result),
            sources=result["sources"],
            missing_units=result["missing"],
            cells=result["cells"],
        )

    @strawberry.mutation(
        description="Correct figures of an accepted report: its next version, holding the accepted cells with "
        "these changed, is submitted with the reason and becomes current only when the receiving agency "
        "accepts it (reviewReport), by someone other than you. Only the form's cells of the report's units."
    )
    async def correct_value(
        self, info: Info, submission_id: int, cells: list[CellInput], reason: str, idempotency_key: Key
    ) -> Submission | None:
        require_scope(info, "reports:submit")
        if not 1 <= len(cells) <= 50_000:
            raise BadUserInput("a correction changes 1 to 50,000 cells")
        values = [workflow.CellValue(c.indicator, c.disaggregation, Decimal(c.value), c.unit) for c in cells]
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, Any]:
            version = await workflow.correct_value(conn, actor, submission_id, values, reason, now=now)
            return {"submission": version.id}

        request = {
            "submission": submission_id,
            "cells": [[v.unit_code, v.indicator_code, v.dims, v.value] for v in values],
            "reason": reason,
        }
        return await _submission(info, await run_idempotent(info, idempotency_key, "correctValue", request, change))

    @strawberry.mutation(
        description="Mark a figure of a submitted report for follow-up, or clear the mark (followUp: false), "
        "with a note (reports:review, the regime's receiving agency). Reviewers see the latest mark on the value."
    )
    async def mark_follow_up(
        self,
        info: Info,
        submission_id: int,
        indicator: str,
        follow_up: bool,
        note: str,
        idempotency_key: Key,
        disaggregation: str = "",
        unit: str | None = None,
    ) -> Submission | None:
        require_scope(info, "reports:review")
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, Any]:
            marked = await follow_ups.mark(
                conn,
                actor,
                submission_id,
                indicator=indicator,
                dims=disaggregation,
                unit_code=unit,
                follow_up=follow_up,
                note=note,
                now=now,
            )
            return {"submission": marked.id}

        request = {
            "submission": submission_id,
            "cell": [unit, indicator, disaggregation],
            "followUp": follow_up,
            "note": note,
        }
        return await _submission(info, await run_idempotent(info, idempotency_key, "markFollowUp", request, change))

    @strawberry.mutation(description="Create or replace a reporting regime (admin).")
    async def upsert_regime(self, info: Info, input: RegimeInput, idempotency_key: Key) -> Regime | None:
        require_scope(info, "admin")
        actor, now = actor_of(info), info.context.clock()
        spec = RegimeSpec(
            code=input.code,
            name_vi=input.name_vi,
            name_en=input.name_en,
            legal_basis=input.legal_basis,
            issuing_agency=input.issuing_agency,
            receiving_agency=input.receiving_agency,
            frequency=input.frequency,
            deadline_rule=input.deadline_rule,
            deadline_value=input.deadline_value,
            reporters=list(input.reporters),
            items=[ItemSpec(i.indicator, i.disaggregation, i.required, i.min_value, i.max_value) for i in input.items],
            cutoff_start_day=input.cutoff_start_day,
            cutoff_end_day=input.cutoff_end_day,
            observation_status=input.observation_status,
            jump_threshold=input.jump_threshold,
            allow_early=input.allow_early,
            expiry_days=input.expiry_days,
            period=input.period,
            deadline=input.deadline,
            levels=[
                Level(n, lv.name_vi, lv.name_en, lv.acted_by.value, lv.agency)
                for n, lv in enumerate(input.approval_levels, start=1)
            ],
            publish_level=input.publish_level,
            consolidates=input.consolidates,
        )

        async def change(conn: Any) -> dict[str, Any]:
            return {"regime": spec.code, "action": await upsert_regime(conn, actor, spec, now=now)}

        result = await run_idempotent(info, idempotency_key, "upsertRegime", {"regime": asdict(spec)}, change)
        row = await info.context.loaders.regime_by_code.load(result["regime"])
        return Regime.of(row) if row else None
