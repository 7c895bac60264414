"""When a report may change: its period's cut-off window, its lock, and lock exceptions.

A draft opens when the period's data cut-off window starts (resolvers/deadlines.py), or earlier
where the regime takes early reports. A regime with expiry days locks each report that many days
after its deadline: nothing of it is opened, saved, submitted or corrected from then on, unless the
receiving agency has opened a lock exception for that reporter and period, with a reason, until an
expiry it chooses. Reviewing is not locked: the receiving agency finishes what was submitted in time.
A lock never rewrites timeliness: a report submitted under an exception after its deadline is late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput, Conflict, Forbidden, NotFound
from nrhub.resolvers.hub_time import shown
from nrhub.resolvers.periods import Period

LONGEST_EXCEPTION = timedelta(days=90)  # an exception is a short reprieve, not a reopened period


@dataclass(frozen=True, slots=True)
class LockException:
    id: int
    regime_code: str
    agency_code: str
    period: str
    reason: str
    opened_by: str
    opened_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Lock:
    """A report's lock at one instant."""

    locks_at: datetime | None  # None: the regime's reports never lock
    exception: LockException | None  # the exception in force at that instant, if any
    locked: bool  # past ``locks_at`` with no exception in force


_COLUMNS = "id, regime_code, agency_code, period, reason, opened_by, opened_at, expires_at"
# The rule itself is SQL (migration 0014), so that reads filtering by it apply the same one.
_SELECT_LOCKS = """
SELECT report_locks_at(k.regime, k.deadline) AS locks_at,
       report_locked(k.regime, k.agency, k.period, k.deadline, k.at) AS locked,
       report_lock_exception(k.regime, k.agency, k.period, k.at) AS exception
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
     WITH ORDINALITY AS k(regime, agency, period, deadline, at, n)
ORDER BY k.n
"""
LockKey = tuple[str, str, str, datetime, datetime]  # regime, agency, period, deadline, at


async def locks_of(db: asyncpg.Connection | asyncpg.Pool, keys: Sequence[LockKey]) -> list[Lock]:
    """``lock_of`` for many reports in one statement (a list of reports asks for each one's lock)."""
    rows = await db.fetch(_SELECT_LOCKS, *(list(column) for column in zip(*keys, strict=True)))
    locks = []
    for r in rows:
        exception = await fetch_exception(db, r["exception"]) if r["exception"] is not None else None
        locks.append(Lock(r["locks_at"], exception, r["locked"]))
    return locks


async def lock_of(
    conn: asyncpg.Connection | asyncpg.Pool, regime: str, agency: str, period: str, deadline: datetime, now: datetime
) -> Lock:
    """The lock of the report (regime, agency, period) due at ``deadline``, as it stands at ``now``."""
    return (await locks_of(conn, [(regime, agency, period, deadline, now)]))[0]


async def fetch_exception(conn: asyncpg.Connection | asyncpg.Pool, exception_id: int) -> LockException:
    return LockException(**await conn.fetchrow(f"SELECT {_COLUMNS} FROM lock_exception WHERE id = $1", exception_id))


async def require_unlocked(
    conn: asyncpg.Connection, regime: str, agency: str, period: str, deadline: datetime, now: datetime
) -> None:
    """Refuse a change to a locked report, saying who can lift the lock."""
    lock = await lock_of(conn, regime, agency, period, deadline, now)
    if lock.locked:
        assert lock.locks_at is not None
        receiving = await conn.fetchval("SELECT receiving_agency FROM regime WHERE code = $1", regime)
        raise Conflict(
            f"the {regime} report of {agency} for {period} locked at {shown(lock.locks_at)}; nothing of it"
            f" changes unless the receiving agency ({receiving}) opens a lock exception (openLockException)"
        )


def require_window_open(regime: str, period: str, opens_at: datetime, allow_early: bool, now: datetime) -> None:
    """Refuse a draft for a period whose data cut-off window has not started, unless early reports are allowed."""
    if now < opens_at and not allow_early:
        raise BadUserInput(
            f"the data cut-off window of {period} opens at {shown(opens_at)}; regime {regime} takes no early reports"
        )


async def open_exception(
    conn: asyncpg.Connection,
    actor: Actor,
    *,
    regime: str,
    agency: str,
    period: str,
    reason: str,
    until: datetime,
    now: datetime,
) -> LockException:
    """A lock exception opened by the regime's receiving agency for one reporter and period, audited."""
    row = await conn.fetchrow(
        "SELECT receiving_agency, frequency,"
        " EXISTS (SELECT 1 FROM regime_reporter WHERE regime_code = $1 AND agency_code = $2) AS reporter"
        " FROM regime WHERE code = $1",
        regime,
        agency,
    )
    if row is None:
        raise NotFound(f"there is no regime {regime}")
    if actor.agency != row["receiving_agency"]:
        raise Forbidden(f"only the receiving agency ({row['receiving_agency']}) opens lock exceptions of {regime}")
    if not row["reporter"]:
        raise BadUserInput(f"agency {agency} does not report under regime {regime}")
    if Period.parse(period).frequency != row["frequency"]:
        raise BadUserInput(f"regime {regime} is reported per {row['frequency']} period, not {period}")
    if not reason.strip():
        raise BadUserInput("a lock exception needs a reason")
    if not now < until <= now + LONGEST_EXCEPTION:
        raise BadUserInput(f"until must be after now and at most {LONGEST_EXCEPTION.days} days away")
    opened = LockException(
        **await conn.fetchrow(
            "INSERT INTO lock_exception (regime_code, agency_code, period, reason, opened_by, opened_at, expires_at)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}",
            regime,
            agency,
            period,
            reason.strip(),
            actor.user or actor.client or "unknown",
            now,
            until,
        )
    )
    await append_entry(
        conn,
        actor,
        "lock_exception.open",
        f"lock_exception:{opened.id}",
        after={"regime": regime, "agency": agency, "period": period, "reason": opened.reason, "until": until},
        at=now,
    )
    return opened
