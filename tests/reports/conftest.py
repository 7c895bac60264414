"""A real hub with a clock the tests set, and tokens for agencies' clients through the real OAuth path."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from nrhub.auth.clients import create_client
from tests.conftest import CliRun, run_nrhub, serving_hub

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
async def database_url(new_demo_database) -> str:
    """Reports change data: they get a demo database of their own, so read tests see the pristine one."""
    return await new_demo_database()


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clock_restored(clock: Clock) -> Iterator[Clock]:
    """For a test that moves the hub's clock, which is the session's: put back for the tests that follow."""
    before = clock.now
    yield clock
    clock.now = before


async def create_test_regime(pool: asyncpg.Pool, prefix: str, *, allow_early: bool, expiry_days: int | None) -> str:
    """A regime of the test's own, as the owner writes it: UBND_79 and UBND_01 report DOSSIERS_TOTAL (a
    required cell) monthly to VPCP, deadline five days after the 14th, end of day Vietnam time."""
    code = f"{prefix}_{uuid.uuid4().hex[:8].upper()}"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO regime (code, name_vi, name_en, legal_basis, issuing_agency, receiving_agency, frequency,"
            " deadline_rule, deadline_value, allow_early, expiry_days)"
            " VALUES ($1, 'Báo cáo thử', 'Test report', 'test', 'VPCP', 'VPCP', 'M', 'DAYS_AFTER_CUTOFF', 5, $2, $3)",
            code,
            allow_early,
            expiry_days,
        )
        await conn.execute("INSERT INTO regime_reporter VALUES ($1, 'UBND_79'), ($1, 'UBND_01')", code)
        await conn.execute("INSERT INTO regime_item (regime_code, indicator_code) VALUES ($1, 'DOSSIERS_TOTAL')", code)
    return code


@pytest.fixture(scope="session")
async def report_hub(database_url: str, clock: Clock) -> AsyncIterator[str]:
    async with serving_hub(database_url, clock=clock, token_rate_limit=10_000) as url:
        yield url


TokenFor = Callable[[str, str], Awaitable[str]]


@pytest.fixture(scope="session")
async def token_for(report_hub: str, pool) -> TokenFor:
    """A bearer token of a new client of ``agency`` granted ``scopes``."""

    async def issue(agency: str, scopes: str) -> str:
        async with pool.acquire() as conn:
            client, secret = await create_client(conn, agency=agency, scopes=scopes.split())
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{report_hub}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, secret or ""),
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    return issue


Gql = Callable[..., Awaitable[dict]]


@pytest.fixture(scope="session")
def gql(report_hub: str) -> Gql:
    async def call(token: str, query: str, **variables: object) -> dict:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{report_hub}/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
        return dict(response.json())

    return call


# --- Fixtures for the audit, concurrency and crash tests -------------------------------------------------------------


def _database_name(url: str) -> str:
    return url.partition("?")[0].rsplit("/", 1)[1]


async def _copy_database(admin: asyncpg.Connection, source: str, target: str) -> None:
    # PostgreSQL refuses while anyone is connected to the source; a backend that just closed may linger.
    for attempt in range(50):
        try:
            await admin.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
            return
        except asyncpg.ObjectInUseError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.1)


@pytest.fixture(scope="session")
async def demo_template(admin_url: str, database_url: str, new_demo_database) -> AsyncIterator[str]:
    """A migrated demo database with a valid audit chain that nothing connects to: cloned for tampering tests.

    Loading the demo takes 10-25 s; copying the reports database takes about one, so it is copied when nothing
    holds a connection to it yet (the audit tests run first in a run of tests/reports), and loaded afresh otherwise.
    """
    from tests.conftest import url_for_database

    source = _database_name(database_url)
    copy = f"hub_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        busy = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", source
        )
        if not busy:
            await _copy_database(admin, source, copy)
    finally:
        await admin.close()
    if not busy:
        yield url_for_database(admin_url, copy)
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        finally:
            await admin.close()
        return
    yield await new_demo_database()  # dropped with the session's other databases


CloneDemo = Callable[[], Awaitable[str]]


@pytest.fixture(scope="session")
async def clone_demo(admin_url: str, demo_template: str) -> AsyncIterator[CloneDemo]:
    """A factory of private copies of the demo database (CREATE DATABASE ... TEMPLATE), dropped at the end."""
    from tests.conftest import url_for_database

    template = _database_name(demo_template)
    created: list[str] = []

    async def clone() -> str:
        name = f"hub_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(admin_url)
        try:
            await _copy_database(conn, template, name)
        finally:
            await conn.close()
        created.append(name)
        return url_for_database(admin_url, name)

    yield clone
    conn = await asyncpg.connect(admin_url)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


Nrhub = Callable[..., Awaitable[CliRun]]


@pytest.fixture(scope="session")
def nrhub() -> Nrhub:
    """Run the real ``nrhub`` command line against a database (tests/conftest.py ``run_nrhub``)."""
    return run_nrhub
