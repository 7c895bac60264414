"""The process's map of federated indicators follows the catalogue: kept while nothing changes, read
again when a change is notified, and when the listening connection was lost (a change may have gone
unheard).

A "silent" change below is made with ``session_replication_role = replica``, which skips the
notifying trigger: what the map says afterwards shows whether it was kept or read again. Real
PostgreSQL: the map's own tests change a database of this module's own; the running hub's test
changes the federation tests' database, and puts its catalogue back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from nrhub.resolvers.events import EventHub
from nrhub.resolvers.federated_indicators import FederatedIndicators
from tests.federation.conftest import GRAPHQL_INDICATOR, gql, sources_toml

INDICATOR = "RETAIL"
LISTENER = "catalogue-listener-test"


@pytest.fixture(scope="module")
async def catalogue_url(new_reference_database) -> str:
    return await new_reference_database()


@pytest.fixture
async def admin(catalogue_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(catalogue_url)
    await conn.execute("UPDATE indicator SET source = 'hub' WHERE source <> 'hub'")
    yield conn
    await conn.close()


@pytest.fixture
async def federated(catalogue_url: str, admin: asyncpg.Connection) -> AsyncIterator[FederatedIndicators]:
    pool = await asyncpg.create_pool(catalogue_url, min_size=1, max_size=2)
    assert pool is not None
    indicators = FederatedIndicators(pool)
    events = EventHub(
        lambda: asyncpg.connect(catalogue_url, server_settings={"application_name": LISTENER}),
        federated=indicators,
    )
    await events.start()
    try:
        yield indicators
    finally:
        await events.stop()
        await pool.close()


async def set_source(
    conn: asyncpg.Connection | asyncpg.Pool, source: str, *, silently: bool = False, indicator: str = INDICATOR
) -> None:
    async with conn.acquire() if isinstance(conn, asyncpg.Pool) else contextlib.nullcontext(conn) as c:
        async with c.transaction():
            if silently:
                await c.execute("SET LOCAL session_replication_role = replica")
            await c.execute("UPDATE indicator SET source = $2 WHERE code = $1", indicator, source)


async def becomes(indicators: FederatedIndicators, source: str, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while await indicators.source_of(INDICATOR) != source:
            await asyncio.sleep(0.01)


async def listener_pid(conn: asyncpg.Connection) -> int | None:
    return await conn.fetchval("SELECT pid FROM pg_stat_activity WHERE application_name = $1", LISTENER)


async def test_an_indicator_is_the_hubs_unless_a_source_serves_it(federated, admin) -> None:
    assert await federated.source_of(INDICATOR) == "hub"
    assert await federated.source_of("NO_SUCH_INDICATOR") == "hub"
    await set_source(admin, "statsbank")
    await becomes(federated, "statsbank")
    assert await federated.source_of("CPI_YOY") == "hub"


async def test_the_map_is_kept_until_a_change_is_notified(federated, admin) -> None:
    assert await federated.source_of(INDICATOR) == "hub"
    await set_source(admin, "popdb", silently=True)
    await asyncio.sleep(0.2)
    assert await federated.source_of(INDICATOR) == "hub"  # kept: nothing was notified
    await admin.execute("UPDATE indicator SET source_note = 'moved' WHERE code = 'CPI_YOY'")
    await becomes(federated, "popdb")  # any change to the table is read again, with the silent one


async def test_the_map_is_read_again_after_the_listener_was_lost(federated, admin) -> None:
    assert await federated.source_of(INDICATOR) == "hub"
    await set_source(admin, "statsbank", silently=True)
    assert await federated.source_of(INDICATOR) == "hub"
    lost = await listener_pid(admin)
    assert lost is not None
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", lost)
    async with asyncio.timeout(5):
        while await listener_pid(admin) in (None, lost):
            await asyncio.sleep(0.02)
    # Listening again, it cannot know what changed meanwhile: the silent change is seen.
    await becomes(federated, "statsbank", within=1.0)


async def test_a_running_hub_answers_from_whoever_serves_the_indicator_now(
    start_hub, population, arrivals, stats, fed_pool
) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    query = f"""{{ observation(indicator: "{GRAPHQL_INDICATOR}", unit: "VN", period: "2026-M10")
      {{ value provenance {{ source }} }} }}"""

    async def answered_by() -> str:
        body = await gql(hub, query)
        assert "errors" not in body, body
        return str(body["data"]["observation"]["provenance"]["source"])

    async def until_answered_by(wanted: str) -> None:
        async with asyncio.timeout(5):
            while await answered_by() != wanted:
                await asyncio.sleep(0.02)

    assert await answered_by() == "statsbank"
    stored = await fed_pool.fetchval(
        "SELECT source FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id AND u.code = 'VN'"
        " WHERE c.indicator_code = $1 AND c.period = '2026-M10' AND c.dims = ''",
        GRAPHQL_INDICATOR,
    )
    assert stored not in (None, "statsbank")
    try:
        await set_source(fed_pool, "hub", indicator=GRAPHQL_INDICATOR)
        await until_answered_by(stored)  # the demo's stored value, no longer hidden by the source
        await set_source(fed_pool, "statsbank", silently=True, indicator=GRAPHQL_INDICATOR)
        assert await answered_by() == stored  # the hub's map is kept: nothing was notified
        await fed_pool.execute("UPDATE indicator SET source_note = source_note WHERE code = $1", GRAPHQL_INDICATOR)
        await until_answered_by("statsbank")
        # The other way: the map still says a source serves it, the catalogue row says the hub's.
        await set_source(fed_pool, "hub", silently=True, indicator=GRAPHQL_INDICATOR)
        assert await answered_by() == stored  # the row decides: the stored value, not a source asked
    finally:
        await set_source(fed_pool, "statsbank", indicator=GRAPHQL_INDICATOR)
