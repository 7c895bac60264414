"""PostgreSQL enforces the grants too (migration 0013, resolvers/granted.py).

A statement run for a request without any filter of its own still returns only the rows of the
caller's indicators and units; without grants in the session, none. Requests connect as nrhub_app
through the hub's own request pool, as the running hub does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest

from nrhub.auth.principal import Grants
from nrhub.config.settings import Settings
from nrhub.db.pools import create_pool, request_url
from nrhub.resolvers import approvals
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.audit import Actor, verify_chain, verify_served
from nrhub.resolvers.granted import Granted
from nrhub.resolvers.idempotency import idempotent
from nrhub.resolvers.scope import Scope, resolve_scope
from tests.reports.flows import MONTHLY, cell_values, reporters

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("observation_current", "observation_latest", "observation_revision")
EVERY = "{-2147483648}"  # hub.units: one range from the smallest integer on


@pytest.fixture(scope="module")
async def request_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The hub's request pool (nrhub_app) on the session's demo database, one connection."""
    pool = await create_pool(Settings(pool_min_size=1, pool_max_size=1), database_url)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def owner(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def scope_of(pool: asyncpg.Pool, indicators: set[str], regions: set[str] | None = None) -> Scope:
    return await resolve_scope(pool, Grants(frozenset(indicators), frozenset(regions) if regions else None))


async def unit_id(owner: asyncpg.Connection, code: str) -> int:
    return await owner.fetchval("SELECT id FROM admin_unit WHERE code = $1 AND valid_to IS NULL", code)


@pytest.mark.parametrize("table", TABLES)
async def test_an_unfiltered_read_returns_exactly_the_granted_rows(request_pool, owner, table: str) -> None:
    scope = await scope_of(request_pool, {"RETAIL", "UNEMP"}, {"79"})
    rows = await Granted(request_pool, scope).fetch(f"SELECT indicator_code, unit_id FROM {table}")
    assert rows
    assert {r["indicator_code"] for r in rows} == {"RETAIL", "UNEMP"}
    assert {r["unit_id"] for r in rows} <= scope.unit_set
    granted = await owner.fetchval(
        f"SELECT count(*) FROM {table} WHERE indicator_code = ANY($1::text[]) AND unit_id = ANY($2::int[])",
        scope.indicators,
        scope.unit_ids,
    )
    assert len(rows) == granted < await owner.fetchval(f"SELECT count(*) FROM {table}")


async def test_without_grants_in_the_session_nothing_is_visible(database_url: str, owner) -> None:
    conn = await asyncpg.connect(request_url(Settings(), database_url))
    try:
        for table in TABLES:
            assert await owner.fetchval(f"SELECT count(*) FROM {table}") > 0
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        # Every unit but no indicator, or grants reset, are no grants either; a malformed one is an error.
        await conn.execute("SELECT set_config('hub.indicators', '', false), set_config('hub.units', $1, false)", EVERY)
        assert await conn.fetchval("SELECT count(*) FROM observation_current") == 0
        await conn.execute("SELECT set_config('hub.indicators', '{\"RETAIL\": true}', false)")
        assert await conn.fetchval("SELECT count(*) FROM observation_current") > 0
        await conn.execute("RESET ALL")
        assert await conn.fetchval("SELECT count(*) FROM observation_current") == 0
        await conn.execute(
            "SELECT set_config('hub.indicators', 'RETAIL', false), set_config('hub.units', $1, false)", EVERY
        )
        with pytest.raises(asyncpg.InvalidTextRepresentationError):
            await conn.fetchval("SELECT count(*) FROM observation_current")
    finally:
        await conn.close()


async def test_a_region_limited_caller_sees_its_region_and_the_nation_only(request_pool, owner) -> None:
    everything = await owner.fetchval("SELECT array_agg(code) FROM indicator")
    scope = await scope_of(request_pool, set(everything), {"79"})
    rows = await Granted(request_pool, scope).fetch("SELECT DISTINCT unit_id FROM observation_current")
    seen = {r["unit_id"] for r in rows}
    nation, hcmc, hanoi = [await unit_id(owner, code) for code in ("VN", "79", "01")]
    below = "SELECT id FROM admin_unit WHERE parent_id = $1 AND level = 'COMMUNE'"
    hcmc_communes = {r["id"] for r in await owner.fetch(below, hcmc)}
    hanoi_communes = {r["id"] for r in await owner.fetch(below, hanoi)}
    assert {nation, hcmc} <= seen and seen & hcmc_communes
    assert hanoi not in seen and not seen & hanoi_communes
    assert seen <= scope.unit_set


async def test_callers_taking_turns_on_one_connection_never_see_each_others_rows(request_pool, owner) -> None:
    retail_everywhere = Granted(request_pool, await scope_of(request_pool, {"RETAIL"}))
    hanoi = await scope_of(request_pool, {"UNEMP"}, {"01"})
    unemp_in_hanoi = Granted(request_pool, hanoi)
    grants_set: list[str] = []

    def log(query: asyncpg.connection.LoggedQuery) -> None:
        if "hub.indicators" in query.query:
            grants_set.append(query.query)

    async with request_pool.acquire() as conn:  # the pool's one connection, whoever borrows it
        conn.add_query_logger(log)
    turns = [retail_everywhere, retail_everywhere, unemp_in_hanoi, retail_everywhere, unemp_in_hanoi, unemp_in_hanoi]
    for db in turns:
        rows = await db.fetch("SELECT DISTINCT indicator_code, unit_id FROM observation_current")
        if db is retail_everywhere:
            assert {r["indicator_code"] for r in rows} == {"RETAIL"}
            assert len({r["unit_id"] for r in rows}) > len(hanoi.unit_set)
        else:
            assert {r["indicator_code"] for r in rows} == {"UNEMP"}
            assert {r["unit_id"] for r in rows} <= hanoi.unit_set
    # The grants are set when the caller changes, not again for the same caller's next statement.
    assert len(grants_set) == 4
    # Through a transaction too (mutations acquire one): it runs under its caller's grants.
    async with retail_everywhere.acquire() as conn, conn.transaction():
        assert {r["indicator_code"] for r in await conn.fetch("SELECT indicator_code FROM observation_latest")} == {
            "RETAIL"
        }
        conn.remove_query_logger(log)


async def test_a_region_limited_callers_national_aggregate_is_the_nations(hub_url: str) -> None:
    """Aggregates read their parts as the owner: limited to one province, the national sum stays whole."""
    query = (
        '{ aggregate(indicator: "RETAIL", unit: "VN", period: "2026-M03", fromLevel: PROVINCE)'
        " { value provenance { storedParts } } }"
    )
    answers = []
    for headers in ({}, {"x-test-regions": "79"}, {"x-test-regions": "79", "x-test-indicators": "RETAIL"}):
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{hub_url}/graphql", json={"query": query}, headers=headers)
        body = response.json()
        assert "errors" not in body, body
        answers.append(body["data"]["aggregate"])
    assert answers[0]["value"] is not None and answers[0]["provenance"]["storedParts"] == 34
    assert answers[1] == answers[2] == answers[0]


async def test_a_reviewer_who_may_read_nothing_accepts_and_corrections_chain(workflow_url: str) -> None:
    """The workflow's transactions see every row (hub.every_row): the revision a correction supersedes, and
    the revisions an audit entry's digest covers, whatever the reviewer may read."""
    now = datetime(2026, 10, 10, 2, tzinfo=UTC)
    owner = await asyncpg.connect(workflow_url)
    pool = await create_pool(Settings(pool_min_size=1, pool_max_size=1), workflow_url)
    try:
        async with asyncio.timeout(60):
            province = (await reporters(owner, MONTHLY))[0]
            reporter = Actor(agency=province, client=f"test-client-{province}", user=None)
            office = Actor(agency="VPCP", client="test-client-VPCP", user=None)
            async with owner.transaction():
                draft = await workflow.open_draft(owner, reporter, regime=MONTHLY, period="2026-M09", now=now)
                cells = [
                    workflow.CellValue(c["indicator"], "", Decimal(c["value"])) for c in cell_values(MONTHLY, 1000)
                ]
                await workflow.save_values(owner, reporter, draft.id, cells, now=now)
                await workflow.submit(owner, reporter, draft.id, now=now)
            # The reviewer's request handle: its grants read nothing at all.
            db = Granted(pool, await scope_of(pool, set()))

            async def review(submission_id: int) -> None:
                async def change(conn) -> dict:
                    await approvals.decide(conn, office, submission_id, approvals.Decision.APPROVE, None, now=now)
                    return {}

                await idempotent(db, office.client, str(uuid.uuid4()), "reviewReport", {"s": submission_id}, change)

            await review(draft.id)
            async with owner.transaction():
                correction = await workflow.correct_value(
                    owner, reporter, draft.id, [workflow.CellValue("RETAIL", "", Decimal(1))], "trust test", now=now
                )
            await review(correction.id)
            history = await owner.fetch(
                "SELECT id, previous_id FROM observation_revision WHERE indicator_code = 'RETAIL' ORDER BY id"
            )
            assert [r["previous_id"] for r in history] == [None, history[0]["id"]]
            assert await db.fetch("SELECT * FROM observation_revision") == []  # and the reviewer still reads nothing
            assert (await verify_chain(owner)).problem is None
            assert await verify_served(owner) is None
    finally:
        await pool.close()
        await owner.close()


def test_what_uses_the_request_pool_directly_reads_no_observation_table() -> None:
    """Connections taken from the pool without a request's handle may hold the last request's grants
    (resolvers/granted.py): so the code that takes them must not read what row-level security guards."""
    direct = [*sorted((ROOT / "auth").glob("*.py"))]
    direct += [ROOT / p for p in ("hub/web/app.py", "hub/web/ws.py", "hub/web/bulk_http.py", "resolvers/scope.py")]
    direct += [ROOT / "resolvers/federated_indicators.py"]
    for path in direct:
        text = path.read_text()
        for table in (*TABLES, "aggregate_observation", "aggregate_additive"):
            assert table not in text, f"{path.relative_to(ROOT)} names {table}: read it through resolvers.granted"
