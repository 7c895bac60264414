"""A hub of its own (three indicators served by sources) and the three real upstreams it federates.

Sources are configured the way an operator does it: a TOML file read by ``load_settings``. Each
test starts its hub (fresh breakers, caches and health) with the policy it needs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from nrhub.auth.principal import Grants, Principal
from nrhub.config.settings import load_settings
from nrhub.web.app import create_app
from tests.federation.upstreams import ArrivalsApi, PopulationDatabase, ResetServer, StatsGraphQL, serve, stop

# The demo marks POP_MONTHLY (popdb) and INTL_VISITORS (tourism) as federated; FDI_REG is moved
# to a GraphQL source here, while its demo values stay in the hub's tables (they must not show).
GRAPHQL_INDICATOR = "FDI_REG"
# A second indicator of the population database, so that one call can serve two indicators.
SECOND_POPDB_INDICATOR = "IIP"


@pytest.fixture(scope="session")
async def fed_database_url(new_demo_database) -> str:
    url = await new_demo_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE indicator SET source = 'statsbank' WHERE code = $1", GRAPHQL_INDICATOR)
        await conn.execute("UPDATE indicator SET source = 'popdb' WHERE code = $1", SECOND_POPDB_INDICATOR)
    finally:
        await conn.close()
    return url


@pytest.fixture(scope="session")
async def fed_pool(fed_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fed_database_url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def population_db(new_database) -> AsyncIterator[PopulationDatabase]:
    database = PopulationDatabase(await new_database())
    await database.start()
    yield database
    await database.close()


@pytest.fixture
async def population(population_db: PopulationDatabase) -> PopulationDatabase:
    population_db.calls.clear()
    return population_db


@pytest.fixture
async def arrivals() -> AsyncIterator[ArrivalsApi]:
    api = ArrivalsApi()
    server, task, api.url = await serve(api.app())
    yield api
    api.release.set()
    await stop(server, task)


@pytest.fixture
async def stats() -> AsyncIterator[StatsGraphQL]:
    api = StatsGraphQL()
    server, task, api.url = await serve(api.app())
    yield api
    await stop(server, task)


@pytest.fixture
async def reset_server() -> AsyncIterator[ResetServer]:
    server = ResetServer()
    await server.start()
    yield server
    await server.close()


POLICY = {
    "timeout": 1.0,
    "retries": 1,
    "retry_backoff": 0.05,
    "breaker_failures": 3,
    "breaker_cooldown": 1.0,
    "max_bytes": 1_000_000,
}
POPULATION_SQL = "SELECT unit, period, dims, value FROM observed_population($1, $2)"
SECOND_SQL = "SELECT unit, period, value / 100 AS value FROM observed_population($1, $2) WHERE dims = ''"
STATS_QUERY = """query Figures($indicators: [String!]!, $units: [String!]!, $periods: [String!]!) {
  figures(indicators: $indicators, units: $units, periods: $periods) { indicator unit period value } }"""


def _toml_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def sources_toml(
    population: PopulationDatabase,
    arrivals: ArrivalsApi,
    stats: StatsGraphQL,
    population_sql: str = POPULATION_SQL,
    **per_source: dict[str, Any],
) -> str:
    """The three sources; ``per_source`` overrides keys of one source, e.g. ``tourism={"cache_ttl": 1}``."""
    popdb_indicators = {"POP_MONTHLY": population_sql, SECOND_POPDB_INDICATOR: SECOND_SQL}
    tables = {
        "popdb": ({"kind": "postgres", "url": population.url}, popdb_indicators, None),
        "tourism": (
            {"kind": "http", "url": arrivals.url + "/api/{indicator}?units={units}&periods={periods}"},
            {"INTL_VISITORS": "arrivals"},
            {"rows": "data", "unit": "province", "period": "month", "value": "arrivals"},
        ),
        "statsbank": (
            {"kind": "graphql", "url": stats.url + "/graphql", "query": STATS_QUERY},
            {GRAPHQL_INDICATOR: "fdi_registered"},
            {"rows": "figures", "indicator": "indicator"},
        ),
    }
    text = []
    for name, (keys, indicators, mapping) in tables.items():
        merged = {"name": name, **keys, **POLICY, **per_source.get(name, {})}
        text.append("[[source]]")
        text += [f"{key} = {_toml_value(value)}" for key, value in merged.items()]
        text.append("[source.indicators]")
        text += [f"{code} = {_toml_value(sql)}" for code, sql in indicators.items()]
        if mapping:
            text.append("[source.mapping]")
            text += [f"{key} = {_toml_value(value)}" for key, value in mapping.items()]
        text.append("")
    return "\n".join(text)


StartHub = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_hub(fed_database_url: str, fed_pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[StartHub]:
    """Start a hub on 127.0.0.1 from a TOML text; principals come from X-Test-* headers."""
    every_indicator = frozenset(await fed_pool.fetchval("SELECT array_agg(code) FROM indicator"))
    running = []

    async def authenticate(request: Any) -> Principal:
        wanted = request.headers.get("x-test-indicators")
        regions = request.headers.get("x-test-regions")
        indicators = every_indicator if wanted is None else frozenset(filter(None, wanted.split(",")))
        grants = Grants(indicators, frozenset(regions.split(",")) if regions else None)
        # catalog:read: with introspection on, the subgraph's SDL (_service) is answered (test_subgraph).
        return Principal(grants=grants, scopes=frozenset({"catalog:read", "data:read"}))

    async def start(toml: str, *, execution_timeout: float = 5.0) -> str:
        path = tmp_path / f"hub-{len(running)}.toml"
        path.write_text(toml, encoding="utf-8")
        settings = load_settings(path, environ={}).replace(
            introspection=True, graphiql=False, execution_timeout=execution_timeout, pool_min_size=1
        )
        server, task, url = await serve(
            create_app(settings, fed_database_url, authenticate=authenticate), lifespan="on"
        )
        running.append((server, task))
        return url

    yield start
    for server, task in running:
        await stop(server, task)


async def gql(url: str, query: str, **headers: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{url}/graphql", json={"query": query}, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = json.loads(response.text, parse_float=Decimal)
    return body


def block(text: str | list) -> list:
    return text if isinstance(text, list) else json.loads(text, parse_float=Decimal)
