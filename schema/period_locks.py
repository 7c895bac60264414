"""Report locks in GraphQL: a report's lock, and the receiving agency's lock exceptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from nrhub.resolvers import period_locks
from nrhub.schema.context import Info
from nrhub.schema.mutating import Key, actor_of, require_scope, run_idempotent
from nrhub.schema.scalars import Period


@strawberry.type(description="A reprieve from a report's lock, opened by the receiving agency with a reason.")
class LockException:
    exception_id: int
    regime: str
    agency: str
    period: Period  # type: ignore[valid-type]
    reason: str
    opened_by: str
    opened_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, e: period_locks.LockException) -> LockException:
        return cls(
            exception_id=e.id,
            regime=e.regime_code,
            agency=e.agency_code,
            period=Period(e.period),
            reason=e.reason,
            opened_by=e.opened_by,
            opened_at=e.opened_at,
            expires_at=e.expires_at,
        )


@strawberry.type(description="Whether a report may still change: it locks its regime's expiry days after its deadline.")
class ReportLock:
    locks_at: datetime | None = strawberry.field(description="Null when the regime's reports never lock.")
    locked: bool = strawberry.field(description="Past locksAt with no lock exception in force: nothing changes.")
    exception: LockException | None = strawberry.field(description="The lock exception in force now, if any.")

    @classmethod
    def of(cls, lock: period_locks.Lock) -> ReportLock:
        return cls(
            locks_at=lock.locks_at,
            locked=lock.locked,
            exception=LockException.of(lock.exception) if lock.exception else None,
        )


@strawberry.type
class LockMutations:
    @strawberry.mutation(
        description="Let one reporter save and submit a locked report until `until` (at most 90 days), with a "
        "reason (reports:review, the regime's receiving agency). A report submitted so after its deadline is late."
    )
    async def open_lock_exception(
        self,
        info: Info,
        regime: str,
        agency: str,
        period: Period,  # type: ignore[valid-type]
        reason: str,
        until: datetime,
        idempotency_key: Key,
    ) -> LockException:
        require_scope(info, "reports:review")
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, Any]:
            opened = await period_locks.open_exception(
                conn, actor, regime=regime, agency=agency, period=period, reason=reason, until=until, now=now
            )
            return {"exception": opened.id}

        request = {"regime": regime, "agency": agency, "period": period, "reason": reason, "until": until.isoformat()}
        done = await run_idempotent(info, idempotency_key, "openLockException", request, change)
        return LockException.of(await period_locks.fetch_exception(info.context.db, int(done["exception"])))
