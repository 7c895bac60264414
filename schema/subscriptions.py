"""Subscriptions: submission status changes and changed observations, read under the caller's grants.

Each event carries keys only (resolvers.events); what a subscriber receives is read for it, per
event, under its own scope. After the hub lost its event connection, subscribers get one event
with ``resync: true``: re-read what you show, events may have been missed.

Events published after the ``subscribe`` message arrived reach the subscription even when they come
while it is still checking grants (``Context.events_after``): a client that sends ``ping`` after
``subscribe`` and has its ``pong`` misses nothing committed from then on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import asyncpg
import strawberry

from nrhub.resolvers import aggregates, approval_levels
from nrhub.resolvers import observations as observation_rows
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.errors import Forbidden
from nrhub.resolvers.events import RESYNC, EventHub
from nrhub.resolvers.reminders import REMINDER_EVENTS
from nrhub.schema.catalogue import UnitLevel
from nrhub.schema.context import Info
from nrhub.schema.data import Observation
from nrhub.schema.reports import SubmissionStatus, visibility
from nrhub.schema.scalars import Period
from nrhub.schema.selection import readable_codes, unit_ids_of

# Reminders (resolvers.reminders) reach the same subscribers: the reporter that owes the report, and the
# regime's receiving agency; their keys are all they carry.
SUBMISSION_EVENTS = {
    "submission.submitted",
    "submission.approved",  # at a level below the last (resolvers.approvals)
    "submission.level_returned",  # sent back one level, still submitted
    "submission.accepted",
    "submission.returned",
    *REMINDER_EVENTS,
}
_SELECT_CHANGED = """
SELECT revision_id, indicator_code, unit_id, period, dims, value, status, submission_id, source
FROM observation_current
WHERE (submission_id = $1 OR revision_id = $2)
  AND indicator_code = ANY($3::text[]) AND unit_id = ANY($4::int[])
ORDER BY indicator_code, unit_id, dims
"""


@strawberry.type(description="A report changed status. With resync true, nothing else is set: re-read your view.")
class SubmissionEvent:
    resync: bool = False
    type: str | None = None
    submission_id: int | None = None
    regime: str | None = None
    period: Period | None = None  # type: ignore[valid-type]
    agency: str | None = None
    status: SubmissionStatus | None = None
    submitted_at: datetime | None = None
    on_time: bool | None = None


@strawberry.type(description="New current values. With resync true, the list is empty: re-read your view.")
class ObservationChange:
    resync: bool = False
    observations: list[Observation] = strawberry.field(default_factory=list)


async def _submission_event(db: asyncpg.Pool, event: dict[str, Any]) -> SubmissionEvent | None:
    if event["type"] in REMINDER_EVENTS:  # no submission to read: the report is owed
        return SubmissionEvent(
            type=event["type"], regime=event["regime"], period=event["period"], agency=event["agency"]
        )
    row = await workflow.fetch_submission(db, int(event["submission"]))
    if row is None:
        return None
    return SubmissionEvent(
        type=event["type"],
        submission_id=row.id,
        regime=row.regime_code,
        period=row.period,
        agency=row.agency_code,
        status=SubmissionStatus(row.status),
        submitted_at=row.submitted_at,
        on_time=row.on_time,
    )


async def _changes(
    db: asyncpg.Pool, event: dict[str, Any], indicators: list[str], unit_ids: list[int], rates: list[str]
) -> ObservationChange | None:
    rows = await db.fetch(_SELECT_CHANGED, event.get("submission"), event.get("revision"), indicators, unit_ids)
    changed = [Observation.of(observation_rows.Observation(**r)) for r in rows]
    if rates and event.get("submission") is not None:
        # ``rates``: the rates asked for that the subscriber may have computed (aggregates.rate_withheld).
        computed = await aggregates.list_changed_rates(db, int(event["submission"]), rates, unit_ids)
        changed += [Observation.of(row, computed_parts=parts) for row, parts in computed]
    return ObservationChange(observations=changed) if changed else None


def _hub(info: Info) -> EventHub:
    events = info.context.events
    if events is None:
        raise Forbidden("subscriptions are served over WebSocket (graphql-transport-ws) at /graphql")
    return events


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Reports submitted, approved at a level, sent back a level, accepted or returned, as it "
        "happens; and reminders of reports due soon or overdue (type reminder.before_deadline or "
        "reminder.overdue, with regime, period and the agency that owes it)."
    )
    async def submission_events(
        self,
        info: Info,
        regime: str | None = None,
        period: Period | None = None,  # type: ignore[valid-type]
        agency: str | None = None,
    ) -> AsyncGenerator[SubmissionEvent, None]:
        seen = visibility(info)  # FORBIDDEN here, at subscribe time, without the scopes to read reports
        hub, scope = _hub(info), info.context.scope
        decided = await approval_levels.decides(info.context.db, seen.agency)

        def wants(event: dict[str, Any]) -> bool:
            return (
                event.get("type") in SUBMISSION_EVENTS
                and regime in (None, event.get("regime"))
                and period in (None, event.get("period"))
                and agency in (None, event.get("agency"))
                and (
                    seen.everything
                    or seen.agency == event.get("agency")
                    or decided.covers(str(event.get("regime")), int(event.get("unit", 0)))
                )
                and scope.covers_unit(int(event.get("unit", 0)))
            )

        subscriber = hub.subscribe(wants, after=info.context.events_after)
        try:
            while True:
                event = await subscriber.next()
                if event is RESYNC:
                    yield SubmissionEvent(resync=True)
                    continue
                # One object per event for every subscriber (read once; nrhub.web.ws executes it once per operation).
                payload = await event.read_once("submission", _submission_event, info.context.db, event.data)
                if payload is not None:
                    yield payload
        finally:
            hub.unsubscribe(subscriber)

    @strawberry.subscription(
        description="Current values that changed (accepted reports, corrections) for the "
        "indicators and units you name. Naming an indicator you may not read is FORBIDDEN."
    )
    async def observations_changed(
        self,
        info: Info,
        indicators: list[str],
        units: list[str] | None = None,
        parent: str | None = None,
        level: UnitLevel | None = None,
    ) -> AsyncGenerator[ObservationChange, None]:
        scope = info.context.scope
        denied = [c for c in indicators if not scope.may_read(c)]
        if denied:
            await readable_codes(info, denied)
            raise Forbidden(f"you may not read {', '.join(denied)}")
        unit_ids = await unit_ids_of(info, units, parent, level)
        rows = await info.context.loaders.indicator_by_code.load_many(indicators)
        rates = [r.code for r in rows if r is not None and aggregates.rate_in_database(scope, r)]
        hub = _hub(info)
        subscriber = hub.subscribe(
            lambda e: e.get("type") in ("submission.accepted", "observation.revised"), after=info.context.events_after
        )
        try:
            while True:
                event = await subscriber.next()
                if event is RESYNC:
                    yield ObservationChange(resync=True)
                    continue
                # The same indicators, readable units and computable rates read the same rows: one
                # statement (two with rates), and one object, for all such subscribers of the event.
                change = await event.read_once(
                    ("changed", tuple(indicators), tuple(unit_ids), tuple(rates)),
                    _changes,
                    info.context.db,
                    event.data,
                    indicators,
                    unit_ids,
                    rates,
                )
                if change is not None:
                    yield change
        finally:
            hub.unsubscribe(subscriber)
