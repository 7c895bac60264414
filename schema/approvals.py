"""Approval levels in GraphQL: a regime's chain, and the decisions recorded on a report."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from nrhub.resolvers import approval_levels, approvals


@strawberry.enum(
    description="Who decides at a level: the reporting agency itself (another person of it), the committee "
    "of the unit above the report's (a province for its communes), or a named agency."
)
class LevelActor(Enum):
    REPORTER = "REPORTER"
    UNIT_ABOVE = "UNIT_ABOVE"
    AGENCY = "AGENCY"


@strawberry.type(description="One level of a regime's approval chain; level 1 decides first on a submitted report.")
class ApprovalLevel:
    position: int
    name_vi: str
    name_en: str
    acted_by: LevelActor
    agency: str | None = strawberry.field(description="The agency of an AGENCY level.")
    publishes: bool = strawberry.field(
        description="Whether this level's approval makes the report's values current observations."
    )

    @classmethod
    def of(cls, level: approval_levels.Level, chain: approval_levels.Chain) -> ApprovalLevel:
        return cls(
            position=level.position,
            name_vi=level.name_vi,
            name_en=level.name_en,
            acted_by=LevelActor(level.acted_by),
            agency=level.agency_code,
            publishes=level.position == chain.publish_level,
        )


@strawberry.enum(description="A decision on a submitted report at an approval level.")
class ApprovalAction(Enum):
    APPROVE = "APPROVE"
    RETURN = "RETURN"
    UNAPPROVE = "UNAPPROVE"


@strawberry.type(description="A decision recorded on a report: which level, which agency and person, when, why.")
class ApprovalStep:
    level: int
    action: ApprovalAction
    agency: str
    acted_by: str
    acted_at: datetime
    reason: str | None = strawberry.field(description="Why it was returned; null otherwise.")

    @classmethod
    def of(cls, step: approvals.Step) -> ApprovalStep:
        return cls(
            level=step.level,
            action=ApprovalAction(step.action),
            agency=step.agency_code,
            acted_by=step.acted_by,
            acted_at=step.acted_at,
            reason=step.reason,
        )
