"""Decisions on a submitted report, level by level: approve, return with a reason, or un-approve.

A submitted report awaits its regime's first approval level (resolvers/approval_levels.py).
Approving at a level hands it to the next; the last level's approval accepts it. Returning at the
first level sends it back to its reporter (RETURNED, and its next version opens as a draft);
returning at a higher level sends it back one level, which decides again. A level may take back
its approval while the next level has not acted, unless the values it published are already
current. The values become current observations when the regime's publishing level approves (the
last one unless the regime names another).

Each decision is a row appended to ``submission_approval`` and an audit entry, in the caller's
transaction. Four eyes at every level: nobody decides on a report they submitted, and one person
approves at one level of a climb only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.approval_levels import Chain, Level, acting_agency, approvers, chain_of
from nrhub.resolvers.audit import Actor, append_entry, revision_digest
from nrhub.resolvers.errors import BadUserInput, Conflict, Forbidden, NotFound
from nrhub.resolvers.queryable import Queryable


class Decision(StrEnum):
    APPROVE = "APPROVE"
    RETURN = "RETURN"
    UNAPPROVE = "UNAPPROVE"


@dataclass(frozen=True, slots=True)
class Step:
    """One decision, as recorded."""

    level: int
    action: str
    agency_code: str
    acted_by: str
    acted_at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class Decided:
    submission: workflow.Submission  # the version decided on, as it is now
    opened: workflow.Submission | None  # the next version, a draft, when it went back to the reporter


_SELECT_STEPS = """
SELECT level, action, agency_code, acted_by, acted_at, reason FROM submission_approval
WHERE submission_id = $1 ORDER BY id
"""
_INSERT_STEP = """
INSERT INTO submission_approval (submission_id, level, action, agency_code, acted_by, acted_at, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


async def steps_of(db: Queryable, submission_id: int) -> list[Step]:
    return [Step(**r) for r in await db.fetch(_SELECT_STEPS, submission_id)]


def standing(steps: list[Step]) -> dict[int, str]:
    """The approvals that stand after ``steps``, by level: who approved it.

    A return at level n takes back level n-1's approval (that level decides again); an
    un-approval takes back the level's own. Standing levels are always 1..k."""
    approved: dict[int, str] = {}
    for step in steps:
        if step.action == Decision.APPROVE:
            approved[step.level] = step.acted_by
        elif step.action == Decision.UNAPPROVE:
            approved.pop(step.level, None)
        else:
            approved.pop(step.level - 1, None)
    return approved


async def decide(
    conn: asyncpg.Connection,
    actor: Actor,
    submission_id: int,
    decision: Decision,
    reason: str | None,
    *,
    now: datetime,
) -> Decided:
    """The actor's decision at the level the report awaits (or, to un-approve, the last one approved)."""
    row = await conn.fetchrow(workflow.SELECT_FOR_UPDATE, submission_id)
    if row is None:
        raise NotFound(f"there is no submission {submission_id}")
    submission = workflow.Submission(**row)
    deciders = await approvers(conn, submission.regime_code, submission.agency_code, submission.unit_id)
    if actor.agency not in deciders:
        raise Forbidden(f"only the agencies of its approval levels decide on {submission.regime_code} reports")
    if submission.status != "SUBMITTED":
        raise Conflict(f"the report is {submission.status.lower()}, not submitted")
    chain = await chain_of(conn, submission.regime_code)
    approved = standing(await steps_of(conn, submission.id))
    if decision is Decision.UNAPPROVE:
        if not approved:
            raise Conflict("no level has approved this report")
        level = chain.at(min(max(approved), chain.last))
    else:
        level = chain.at(min(len(approved) + 1, chain.last))
    await _require_decider(conn, actor, submission, level, approved, decision)
    if decision is Decision.RETURN and not (reason and reason.strip()):
        raise BadUserInput("returning a report needs a reason")
    if decision is Decision.UNAPPROVE and level.position >= chain.publish_level:
        raise Conflict(
            f"level {level.position}'s approval made the report's values current; correct them (correctValue) instead"
        )
    await conn.execute(
        _INSERT_STEP,
        submission.id,
        level.position,
        decision.value,
        actor.agency,
        workflow.actor_name(actor),
        now,
        reason if decision is Decision.RETURN else None,
    )
    if decision is Decision.APPROVE:
        return Decided(await _approve(conn, actor, submission, level, chain, now), None)
    if decision is Decision.RETURN:
        return await _return(conn, actor, submission, level, reason or "", now)
    await append_entry(
        conn, actor, "submission.unapprove", f"submission:{submission.id}", after={"level": level.position}, at=now
    )
    return Decided(submission, None)


async def _require_decider(
    conn: asyncpg.Connection,
    actor: Actor,
    submission: workflow.Submission,
    level: Level,
    approved: dict[int, str],
    decision: Decision,
) -> None:
    agency = await acting_agency(conn, level, submission.agency_code, submission.unit_id)
    if actor.agency != agency:
        holder = agency or "the committee of the unit above (there is none)"
        raise Forbidden(f"the report awaits level {level.position} ({level.name_en}), decided by {holder}")
    person = workflow.actor_name(actor)
    if person == submission.submitted_by:
        raise Forbidden("a report is decided on by someone other than whoever submitted it (four eyes)")
    if decision is Decision.APPROVE and person in approved.values():
        raise Forbidden("one person approves a report at one level only (four eyes)")


async def _approve(
    conn: asyncpg.Connection,
    actor: Actor,
    submission: workflow.Submission,
    level: Level,
    chain: Chain,
    now: datetime,
) -> workflow.Submission:
    if level.position == chain.last:
        accepted, _ = await workflow.accept(
            conn, actor, submission, publishes=chain.publish_level == chain.last, now=now
        )
        return accepted
    # A level above the publishing one may send the report back to it: approving again publishes nothing twice.
    publishes = level.position == chain.publish_level and not await _published(conn, submission.id)
    revisions = await workflow.publish(conn, actor, submission, now) if publishes else []
    published = {"revisions": revisions, "revision_digest": await revision_digest(conn, revisions)} if revisions else {}
    await append_entry(
        conn,
        actor,
        "submission.approve",
        f"submission:{submission.id}",
        after={"level": level.position, **published},
        at=now,
    )
    await workflow.notify(conn, "submission.approved", submission)
    return submission


async def _published(conn: asyncpg.Connection, submission_id: int) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM observation_revision WHERE submission_id = $1)",
                                    submission_id))  # fmt: skip


async def _return(
    conn: asyncpg.Connection, actor: Actor, submission: workflow.Submission, level: Level, reason: str, now: datetime
) -> Decided:
    if level.position == 1:
        returned = await workflow.return_to_reporter(conn, actor, submission, reason, now=now)
        return Decided(returned, await workflow.reopen(conn, actor, returned, now=now))
    await append_entry(
        conn,
        actor,
        "submission.return_level",
        f"submission:{submission.id}",
        after={"level": level.position, "to_level": level.position - 1, "reason": reason},
        at=now,
    )
    await workflow.notify(conn, "submission.level_returned", submission)
    return Decided(submission, None)
