"""Which reminders are due, and recording them with their deliveries in one transaction (the outbox).

A reporter owes a report for (regime, period) until a version of it leaves DRAFT or RETURNED (a
returned report counts as not yet submitted). When the period's deadline is within ``lead`` it is
reminded once (BEFORE_DEADLINE); when the deadline has passed, less than ``lookback`` ago, once more
(OVERDUE). The lookback keeps a hub started on a database with years of history from announcing
every report ever missed.

Each reminder is a row whose key (regime, agency, period, kind) is unique: recording it again is a
no-op, so any number of scheduler runs, restarts or leaders record it once. In the same transaction
one delivery is queued for each webhook of the reporter and of the receiving agency that asked for
that kind, and one event goes to subscribers (``NOTIFY hub_events``, keys only, like the workflow's).
A crash before the commit records nothing; after it, the deliveries wait as PENDING rows.

Deadlines come from resolvers.deadlines, as the workflow computes them, for every kind of regime:
each period of a recurring one (weeks included), and the one period of an ad-hoc request, due at its
one-off deadline. The scheduler's clock is the hub's (tests set it), while delivery times are the
database's (resolvers.webhook_delivery).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg
import orjson

from nrhub.resolvers.deadlines import RULE_COLUMNS, Rule, schedule
from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.hub_time import shown
from nrhub.resolvers.periods import FREQUENCIES, WEEKLY, Period, containing, period_range
from nrhub.resolvers.submissions import EVENT_CHANNEL

log = logging.getLogger("hub.reminders")
EVENTS = {"BEFORE_DEADLINE": "reminder.before_deadline", "OVERDUE": "reminder.overdue"}
REMINDER_EVENTS = frozenset(EVENTS.values())
_LONGEST_DELAY = timedelta(days=120)  # from a period's end to its deadline: at most 60 days after a cut-off


@dataclass(frozen=True, slots=True)
class DueReport:
    kind: str
    regime_code: str
    period: str
    deadline: datetime


_SELECT_REGIMES = f"SELECT code, frequency, {RULE_COLUMNS} FROM regime ORDER BY code"
# The reporters that still owe each (regime, period): no version of their report left DRAFT or RETURNED.
_SELECT_OWING = """
SELECT d.ord, rr.agency_code
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS d(regime, period, ord)
JOIN regime_reporter rr ON rr.regime_code = d.regime
WHERE NOT EXISTS (SELECT 1 FROM submission s
                  WHERE s.regime_code = d.regime AND s.agency_code = rr.agency_code AND s.period = d.period
                    AND s.status NOT IN ('DRAFT', 'RETURNED'))
ORDER BY d.ord, rr.agency_code
"""
_INSERT_REMINDERS = """
INSERT INTO reminder (kind, regime_code, agency_code, period, deadline, created_at)
SELECT *, clock_timestamp() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
ON CONFLICT (regime_code, agency_code, period, kind) DO NOTHING
RETURNING id, kind, regime_code, agency_code, period, deadline
"""
# One delivery per new reminder and per enabled webhook of the reporter or the receiving agency that
# asked for its kind. The payload says nothing the two agencies do not already know: no figures.
_INSERT_DELIVERIES = """
INSERT INTO webhook_delivery (webhook_id, reminder_id, event, payload, next_attempt_at, created_at)
SELECT w.id, r.id, 'reminder.' || lower(r.kind),  -- EVENTS
       jsonb_build_object('type', 'reminder.' || lower(r.kind), 'kind', r.kind, 'reminder', r.id,
                          'regime', r.regime_code, 'period', r.period, 'agency', r.agency_code,
                          'receivingAgency', g.receiving_agency, 'deadline', n.deadline,
                          'role', CASE WHEN w.agency_code = r.agency_code THEN 'REPORTER' ELSE 'RECEIVER' END),
       clock_timestamp(), clock_timestamp()
FROM unnest($1::bigint[], $2::text[]) AS n(id, deadline)
JOIN reminder r ON r.id = n.id JOIN regime g ON g.code = r.regime_code
JOIN webhook w ON NOT w.disabled AND r.kind = ANY(w.events) AND w.agency_code IN (r.agency_code, g.receiving_agency)
ON CONFLICT (reminder_id, webhook_id) DO NOTHING
"""
_SELECT_UNITS = """
SELECT a.code, coalesce(a.unit_id, (SELECT id FROM admin_unit WHERE level = 'NATION')) AS unit_id
FROM agency a WHERE a.code = ANY($1::text[])
"""


def due_reports(
    regimes: list[asyncpg.Record], holidays: set[date], now: datetime, lead: timedelta, lookback: timedelta
) -> list[DueReport]:
    """The (regime, period) pairs whose deadline falls within ``lookback`` before ``now`` to ``lead`` after it."""
    due: list[DueReport] = []
    for regime in regimes:
        if regime["frequency"] not in FREQUENCIES:  # the database allows no other; say so if it ever does
            log.warning("no reminders for regime %s: unknown frequency %s", regime["code"], regime["frequency"])
            continue
        try:
            due += _due_of(regime, holidays, now, lead, lookback)
        except (BadUserInput, ValueError) as exc:  # one odd regime must not stop the others' reminders
            log.warning("no reminders for regime %s: %s", regime["code"], exc)
    return due


def _due_of(
    regime: asyncpg.Record, holidays: set[date], now: datetime, lead: timedelta, lookback: timedelta
) -> list[DueReport]:
    rule = Rule.of(regime)
    if rule.adhoc_period is not None:  # one period, due at its one-off deadline however far from it
        periods = [Period.parse(rule.adhoc_period)]
    else:
        first = _containing(now - lookback - _LONGEST_DELAY, regime["frequency"])
        periods = period_range(first, _containing(now + lead, regime["frequency"]))
    due = []
    for period in periods:
        deadline = schedule(rule, period, holidays).deadline
        if now < deadline <= now + lead:
            due.append(DueReport("BEFORE_DEADLINE", regime["code"], str(period), deadline))
        elif now - lookback <= deadline <= now:
            due.append(DueReport("OVERDUE", regime["code"], str(period), deadline))
    return due


def _containing(moment: datetime, frequency: str) -> Period:
    """The period of ``frequency`` holding ``moment``'s day."""
    day = moment.date()
    if frequency == WEEKLY:
        return Period.week_of(day)
    return containing(Period(day.year, day.month, "M"), frequency)


async def record_reminders(conn: asyncpg.Connection, now: datetime, lead: timedelta, lookback: timedelta) -> int:
    """Record the reminders due at ``now`` not recorded before, queue their deliveries and announce
    them, in one transaction; returns how many were new."""
    regimes = await conn.fetch(_SELECT_REGIMES)
    holidays = {r["day"] for r in await conn.fetch("SELECT day FROM holiday")}
    due = due_reports(regimes, holidays, now, lead, lookback)
    if not due:
        return 0
    async with conn.transaction():
        owing = await conn.fetch(_SELECT_OWING, [d.regime_code for d in due], [d.period for d in due])
        reports = [(due[r["ord"] - 1], r["agency_code"]) for r in owing]
        rows = await conn.fetch(
            _INSERT_REMINDERS,
            [d.kind for d, _ in reports],
            [d.regime_code for d, _ in reports],
            [agency for _, agency in reports],
            [d.period for d, _ in reports],
            [d.deadline for d, _ in reports],
        )
        if not rows:
            return 0
        deadlines = [shown(r["deadline"]) for r in rows]  # the hub's one convention: Vietnam time
        await conn.execute(_INSERT_DELIVERIES, [r["id"] for r in rows], deadlines)
        agencies = list({r["agency_code"] for r in rows})
        units = {u["code"]: u["unit_id"] for u in await conn.fetch(_SELECT_UNITS, agencies)}
        for row in rows:
            # Keys only, like the workflow's events: each subscriber is told what its own grants let it see.
            event = {
                "type": EVENTS[row["kind"]],
                "reminder": row["id"],
                "regime": row["regime_code"],
                "period": row["period"],
                "agency": row["agency_code"],
                "unit": units.get(row["agency_code"], 0),
            }
            await conn.execute("SELECT pg_notify($1, $2)", EVENT_CHANNEL, orjson.dumps(event).decode())
    log.info("recorded %d reminder(s)", len(rows))
    return len(rows)
