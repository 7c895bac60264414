"""Lock exceptions listed with the lock of the report each one concerns (``nrhub locks list``).

The lock itself is resolvers/period_locks.py's (``lock_of``, the SQL rule of migration 0014); this
only finds the report's deadline to ask it with: the latest version's, which a returned report
keeps, or, before any draft is opened, the one the regime's schedule gives the period (as opening
the draft would, resolvers/submissions.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from nrhub.resolvers.deadlines import RULE_COLUMNS, Rule, schedule
from nrhub.resolvers.errors import NotFound
from nrhub.resolvers.period_locks import Lock, LockException, lock_of
from nrhub.resolvers.periods import Period
from nrhub.resolvers.submissions import holidays


@dataclass(frozen=True, slots=True)
class ListedException:
    exception: LockException
    in_force: bool  # at the instant asked: opened at or before it, expiring after it
    report_lock: Lock  # the report's lock at that instant (with whichever exception is in force then)


# Oldest first, of regime $1 and period $2 when given.
_SELECT_EXCEPTIONS = """
SELECT id, regime_code, agency_code, period, reason, opened_by, opened_at, expires_at FROM lock_exception
WHERE ($1::text IS NULL OR regime_code = $1) AND ($2::text IS NULL OR period = $2)
ORDER BY id
"""
_SELECT_DEADLINE = """
SELECT deadline FROM submission WHERE regime_code = $1 AND agency_code = $2 AND period = $3
ORDER BY version DESC LIMIT 1
"""
_SELECT_RULE = f"SELECT {RULE_COLUMNS} FROM regime WHERE code = $1"


async def list_exceptions(
    conn: asyncpg.Connection, *, regime: str | None, period: str | None, at: datetime
) -> list[ListedException]:
    if period is not None:
        Period.parse(period)  # BadUserInput for anything else
    if regime is not None and not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM regime WHERE code = $1)", regime):
        raise NotFound(f"there is no regime {regime}")
    listed = []
    for row in await conn.fetch(_SELECT_EXCEPTIONS, regime, period):
        e = LockException(**row)
        deadline = await report_deadline(conn, e.regime_code, e.agency_code, e.period)
        lock = await lock_of(conn, e.regime_code, e.agency_code, e.period, deadline, at)
        listed.append(ListedException(e, e.opened_at <= at < e.expires_at, lock))
    return listed


async def report_deadline(conn: asyncpg.Connection, regime: str, agency: str, period: str) -> datetime:
    """The deadline of the agency's report under the regime for the period, opened or not."""
    deadline: datetime | None = await conn.fetchval(_SELECT_DEADLINE, regime, agency, period)
    if deadline is not None:
        return deadline
    row = await conn.fetchrow(_SELECT_RULE, regime)
    return schedule(Rule.of(row), Period.parse(period), await holidays(conn)).deadline
