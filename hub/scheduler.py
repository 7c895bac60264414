"""The reminder scheduler: one leader among the hub processes of a database, by an advisory lock.

Every process runs this loop; the one whose dedicated connection holds the session advisory lock
``LEADER_LOCK_KEY`` is the leader. Every ``reminder_interval`` seconds the leader records the
reminders that have fallen due (resolvers.reminders) and sends the due deliveries of the outbox
(resolvers.webhook_delivery); the others only try for the lock. The lock is PostgreSQL's, held by a
connection: when the leader dies, or its connection does, PostgreSQL releases it and another process
takes over at its next try. What the old leader was sending is sent again once its lease expires,
which is what at-least-once means; nothing recorded is lost and no reminder is recorded twice.

The connection is the owner's (the configured URL): the request role may neither write the outbox
nor read the webhooks' secrets (migration 0016).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
import httpx

from nrhub.auth.address import parse_proxies
from nrhub.config.settings import Settings
from nrhub.db.pools import listening_connection
from nrhub.resolvers.reminders import record_reminders
from nrhub.resolvers.webhook_delivery import DeliveryPolicy, deliver_due

log = logging.getLogger("hub.scheduler")
LEADER_LOCK_KEY = 0x6E72687562 + 0x10  # beside the migration and audit locks' keys, for recognisability
CONNECT_TIMEOUT = 10.0
STATEMENT_TIMEOUT = 30.0  # a hung database must not hang the scheduler for ever


class Scheduler:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        clock: Callable[[], datetime],
        policy: DeliveryPolicy,
        *,
        interval: float,
        lead: timedelta,
        lookback: timedelta,
    ) -> None:
        self._connect = connect
        self._clock = clock
        self._policy = policy
        self._interval = interval
        self._lead, self._lookback = lead, lookback
        self._task: asyncio.Task[None] | None = None
        self.leader = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hub-reminder-scheduler")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.5
        # No redirects: the address a URL resolves to is checked, not where a receiver would send us.
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
            while True:
                conn: asyncpg.Connection | None = None
                try:
                    conn = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT)
                    while True:
                        # An interval first: a process that starts and stops at once (a command, a test's
                        # hub) sends nothing, and a restarted leader gives the old lock time to go.
                        await asyncio.sleep(self._interval)
                        await self._tick(conn, http)
                        backoff = 0.5
                except asyncio.CancelledError:
                    if conn is not None:
                        conn.terminate()  # not close(): it waits for a server that may never answer
                    raise
                except Exception as exc:  # the loop must outlive any failure: the lock is retried on a new connection
                    log.warning("reminder scheduler: %s: %s; retrying", type(exc).__name__, exc)
                if conn is not None:
                    conn.terminate()  # and with it the lock, if held
                self.leader = False
                await asyncio.sleep(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, 10.0)

    async def _tick(self, conn: asyncpg.Connection, http: httpx.AsyncClient) -> None:
        if not self.leader:
            async with asyncio.timeout(STATEMENT_TIMEOUT):
                self.leader = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY))
            if not self.leader:
                return
            log.info("reminder scheduler: this process leads")
        async with asyncio.timeout(STATEMENT_TIMEOUT):
            await record_reminders(conn, self._clock(), self._lead, self._lookback)
        while True:
            async with asyncio.timeout(STATEMENT_TIMEOUT + self._policy.timeout):
                if await deliver_due(conn, http, self._policy) < self._policy.batch:
                    return  # else a full batch: more may be due


def scheduler_for(settings: Settings, database_url: str, clock: Callable[[], datetime]) -> Scheduler | None:
    """The app's scheduler as the settings configure it; None when reminders are off."""
    if not settings.reminders:
        return None
    policy = DeliveryPolicy(
        timeout=settings.webhook_timeout,
        max_attempts=settings.webhook_max_attempts,
        retry_base=settings.webhook_retry_base,
        allow_loopback=settings.webhook_allow_loopback,
        allowed_networks=parse_proxies(settings.webhook_allowed_networks),
    )
    return Scheduler(
        lambda: listening_connection(database_url),  # the owner's, with TCP keepalives
        clock,
        policy,
        interval=settings.reminder_interval,
        lead=timedelta(days=settings.reminder_lead_days),
        lookback=timedelta(days=settings.reminder_overdue_days),
    )
