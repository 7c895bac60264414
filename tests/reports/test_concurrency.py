"""Forty reports driven through GraphQL at once leave one linear audit chain that verifies."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest

from nrhub.resolvers.audit import _LOCK_KEY as AUDIT_LOCK
from nrhub.resolvers.audit import verify_chain
from tests.reports.flows import (
    MONTHLY,
    OPEN,
    QUARTERLY,
    REVIEW,
    SAVE,
    SUBMIT,
    assert_linear_chain,
    cell_values,
    key,
    ok,
    reporters,
)


async def test_forty_concurrent_submissions_leave_one_linear_chain(
    gql, token_for, clock, pool, database_url: str, nrhub
) -> None:
    async with asyncio.timeout(90):
        provinces = await reporters(pool, MONTHLY)
        assert len(provinces) == 34
        # 40 distinct reports: every province for September, six of them for August too. (The two
        # ministries report the same national figures: see the next test.)
        reports = [(p, MONTHLY, "2026-M09") for p in provinces] + [(p, MONTHLY, "2026-M08") for p in provinces[:6]]
        assert len(reports) == 40
        agencies = sorted({agency for agency, _, _ in reports})
        # Tokens a few at a time: each costs a scrypt hash on both sides, and the token fixture's client
        # gives up after 5 s.
        gate = asyncio.Semaphore(4)

        async def token(agency: str) -> str:
            async with gate:
                return await token_for(agency, "reports:submit")

        tokens = dict(zip(agencies, await asyncio.gather(*(token(a) for a in agencies)), strict=True))
        office = await token_for("VPCP", "reports:review")
        clock.now = datetime(2026, 10, 10, 2, 0, tzinfo=UTC)
        entries_before = await pool.fetchval("SELECT count(*) FROM audit_entry")

        async def report(agency: str, regime: str, period: str, n: int) -> tuple[int, str]:
            token = tokens[agency]
            opened = ok(await gql(token, OPEN, r=regime, p=period, k=key()), "openDraft")
            assert opened is not None and opened["status"] == "DRAFT", (agency, period)
            submission = int(opened["submissionId"])
            saved = ok(await gql(token, SAVE, s=submission, v=cell_values(regime, 100 + n), k=key()), "saveValues")
            assert saved is not None and saved["problems"] == [], (agency, period, saved)
            submitted = ok(await gql(token, SUBMIT, s=submission, k=key()), "submitReport")
            assert submitted is not None and submitted["status"] == "SUBMITTED", (agency, period)
            accepted = ok(await gql(office, REVIEW, s=submission, d="ACCEPT", k=key()), "reviewReport")
            assert accepted is not None, (agency, period)
            return submission, accepted["status"]

        outcomes = await asyncio.gather(*(report(*r, n) for n, r in enumerate(reports)))
        assert [status for _, status in outcomes] == ["ACCEPTED"] * 40
        submissions = [s for s, _ in outcomes]
        assert len(set(submissions)) == 40

        # Every report made exactly its four entries, and the values it published.
        rows = await pool.fetch(
            "SELECT action, subject FROM audit_entry WHERE subject = ANY($1::text[])",
            [f"submission:{s}" for s in submissions],
        )
        assert Counter(r["action"] for r in rows) == {
            "submission.open": 40,
            "submission.values": 40,
            "submission.submit": 40,
            "submission.accept": 40,
        }
        assert len({(r["action"], r["subject"]) for r in rows}) == 160
        published = await pool.fetchval(
            "SELECT count(*) FROM observation_revision WHERE submission_id = ANY($1::bigint[])", submissions
        )
        assert published == 40 * 7

        async with pool.acquire() as conn:
            entries = await assert_linear_chain(conn)
            assert entries == entries_before + 160
            result = await verify_chain(conn)
        assert result.problem is None and result.entries == entries

        run = await nrhub("audit", "verify", database_url=database_url)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(f"audit chain verifies: {entries} entries")


@pytest.mark.parametrize(
    "quarter",
    [
        "2026-Q1",  # supersedes a demo value
        "2026-Q4",  # the first value of each key: nothing current yet
    ],
)
async def test_two_ministries_accepted_at_once_both_publish(gql, token_for, clock, pool, quarter: str) -> None:
    """BTC and NHNN both report the national figures of BC_BO_QUY; accepting both at once must work.

    The race is forced: the test holds the audit chain's lock, so neither accept can commit until both
    are inside their transactions and waiting (on that lock, or on what the other one holds); then it
    lets them go.
    """
    async with asyncio.timeout(60):
        office = await token_for("VPCP", "reports:review")
        # Ten days after the quarter ends: its cut-off window is open (a draft waits for it).
        clock.now = {
            "2026-Q1": datetime(2026, 4, 10, 2, 0, tzinfo=UTC),
            "2026-Q4": datetime(2027, 1, 10, 2, 0, tzinfo=UTC),
        }[quarter]
        submissions = {}
        for n, ministry in enumerate(await reporters(pool, QUARTERLY)):
            token = await token_for(ministry, "reports:submit")
            opened = ok(await gql(token, OPEN, r=QUARTERLY, p=quarter, k=key()), "openDraft")
            assert opened is not None
            submission = int(opened["submissionId"])
            saved = ok(await gql(token, SAVE, s=submission, v=cell_values(QUARTERLY, 5000 + n), k=key()), "saveValues")
            assert saved is not None and saved["problems"] == []
            assert ok(await gql(token, SUBMIT, s=submission, k=key()), "submitReport") is not None
            submissions[ministry] = submission

        async with pool.acquire() as holder:
            await holder.execute("SELECT pg_advisory_lock($1)", AUDIT_LOCK)
            try:
                reviews = [
                    asyncio.create_task(gql(office, REVIEW, s=s, d="ACCEPT", k=key())) for s in submissions.values()
                ]
                # Both accepts are inside their transactions, waiting on a lock, before either commits.
                deadline = asyncio.get_running_loop().time() + 10
                while asyncio.get_running_loop().time() < deadline:
                    waiting = await holder.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                    )
                    if waiting >= 2:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await holder.execute("SELECT pg_advisory_unlock($1)", AUDIT_LOCK)
            responses = await asyncio.gather(*reviews)

        assert [r.get("errors") for r in responses] == [None, None], responses
        assert [r["data"]["reviewReport"]["status"] for r in responses] == ["ACCEPTED", "ACCEPTED"]
        # The later acceptance supersedes the earlier: one history, nothing lost.
        history = await pool.fetch(
            "SELECT r.id, r.previous_id, r.submission_id FROM observation_revision r"
            " JOIN admin_unit u ON u.id = r.unit_id"
            " WHERE r.indicator_code = 'GDP_CUR' AND u.level = 'NATION' AND r.period = $1 AND r.dims = ''"
            " ORDER BY r.id",
            quarter,
        )
        published = [r for r in history if r["submission_id"] in submissions.values()]
        assert len(published) == 2
        assert published[1]["previous_id"] == published[0]["id"]
        # One line of history: every revision but the first supersedes the one before it.
        assert [r["previous_id"] for r in history[1:]] == [r["id"] for r in history[:-1]]
        async with pool.acquire() as conn:
            assert (await verify_chain(conn)).problem is None
