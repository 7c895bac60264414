"""Subscribers of one event share its reads (one statement per distinct read, not one per subscriber) and,
with the same operation and grants, its execution."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import asyncpg
import pytest
from graphql import ExecutionResult, GraphQLError

from nrhub.resolvers.events import Event
from nrhub.schema.subscriptions import SubmissionEvent
from nrhub.web.event_stream import SharedResponses

READ = "SELECT code FROM admin_unit WHERE level = 'PROVINCE' AND valid_to IS NULL AND code = ANY($1::text[])"


@pytest.fixture
async def logged(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, list[str]]]:
    statements: list[str] = []

    async def log_queries(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: statements.append(record.query))

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4, init=log_queries)
    assert pool is not None
    try:
        yield pool, statements
    finally:
        await pool.close()


async def test_subscribers_asking_the_same_read_share_one_statement(logged) -> None:
    pool, statements = logged
    event = Event({"type": "submission.accepted", "submission": 1})
    same = [event.read_once(("units", "79"), pool.fetch, READ, ["79"]) for _ in range(50)]
    other = [event.read_once(("units", "01"), pool.fetch, READ, ["01"]) for _ in range(50)]
    results = await asyncio.gather(*same, *other)
    assert [[r["code"] for r in rows] for rows in results] == [["79"]] * 50 + [["01"]] * 50
    assert statements.count(READ) == 2, statements


async def test_a_subscriber_leaving_does_not_cancel_the_read_the_others_wait_for(logged) -> None:
    pool, statements = logged
    event = Event({"type": "submission.accepted", "submission": 2})
    slow = "SELECT pg_sleep(0.3), $1::text AS code"
    leaving = asyncio.create_task(event.read_once("slow", pool.fetch, slow, "79"))
    staying = asyncio.create_task(event.read_once("slow", pool.fetch, slow, "79"))
    await asyncio.sleep(0.1)
    leaving.cancel()
    rows = await staying
    assert leaving.cancelled() and rows[0]["code"] == "79"
    assert statements.count(slow) == 1


async def test_a_failed_read_reaches_every_subscriber_that_shares_it(logged) -> None:
    pool, _ = logged
    event = Event({"type": "submission.accepted", "submission": 3})
    bad = "SELECT 1 / $1::int"
    results = await asyncio.gather(
        *(event.read_once("bad", pool.fetchval, bad, 0) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, asyncpg.DivisionByZeroError) for r in results), results


async def test_subscribers_with_one_operation_and_grants_share_one_execution_per_event() -> None:
    responses = SharedResponses()
    executions: list[str] = []

    async def execute(label: str) -> ExecutionResult:
        executions.append(label)
        await asyncio.sleep(0.01)
        return ExecutionResult({"label": label})

    # What schema.subscriptions hands every subscriber of one event: strawberry types, equal by value.
    event, next_event = SubmissionEvent(type="submission.accepted"), SubmissionEvent(type="submission.accepted")
    same = [responses.get(event, "office", lambda: execute("office")) for _ in range(20)]
    other = [responses.get(event, "province 86", lambda: execute("province 86")) for _ in range(5)]
    results = await asyncio.gather(*same, *other)
    assert [r.data["label"] for r in results] == ["office"] * 20 + ["province 86"] * 5
    assert sorted(executions) == ["office", "province 86"]
    await responses.get(next_event, "office", lambda: execute("office again"))
    assert executions[-1] == "office again"  # a new event is a new execution

    del event, next_event, same, other, results
    gc.collect()
    assert len(responses) == 0  # forgotten with the events' payloads


async def test_a_failed_shared_execution_lets_its_payload_go() -> None:
    """Errors carry tracebacks whose frames hold the payload: remembered, the payload would never be collected."""
    responses = SharedResponses()

    async def failing(payload: SubmissionEvent) -> ExecutionResult:
        try:
            raise RuntimeError(f"cannot read {payload.type}")
        except RuntimeError as exc:
            return ExecutionResult(None, errors=[GraphQLError("internal error", original_error=exc)])

    for _ in range(5):
        event = SubmissionEvent(type="submission.accepted")
        results = await asyncio.gather(*(responses.get(event, "office", lambda e=event: failing(e)) for _ in range(3)))
        assert all(r.errors for r in results)
        del event, results
    gc.collect()
    assert len(responses) == 0
