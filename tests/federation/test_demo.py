"""The demo's two sources as `make run` configures them: the population database and the tourism API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from nrhub.config.sources import same_server
from nrhub.demo import tourism_api
from nrhub.demo.population import load_population
from nrhub.resolvers.periods import Period
from tests.federation.conftest import block, gql
from tests.federation.upstreams import serve, stop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def popdb(fed_database_url: str, admin_url: str) -> AsyncIterator[str]:
    """A population database made by the demo loader, under a name of its own (dropped after)."""
    name = f"popdb_{uuid.uuid4().hex[:8]}"
    first = await load_population(fed_database_url, name)
    again = await load_population(fed_database_url, name)
    assert first == again  # loading twice adds nothing
    yield name
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def tourism() -> AsyncIterator[str]:
    server, task, url = await serve(tourism_api.app)
    yield url
    await stop(server, task)


async def test_the_demo_serves_population_and_arrivals_from_its_sources(
    start_hub, fed_database_url: str, popdb: str, tourism: str
) -> None:
    toml = (ROOT / "hub" / "demo" / "sources.toml").read_text(encoding="utf-8")
    toml = toml.replace('database = "popdb"', f'database = "{popdb}"').replace("http://127.0.0.1:8101", tourism)
    hub = await start_hub(toml)
    body = await gql(
        hub,
        '{ table(indicators: ["POP_MONTHLY", "INTL_VISITORS"], units: ["79", "79001", "VN"]) { rows } '
        'f: observation(indicator: "POP_MONTHLY", unit: "79", period: "2026-M10", disaggregation: "SEX=F") '
        "{ value provenance { source } } }",
    )
    assert "errors" not in body, body
    rows = {r["unit"]: r for r in block(body["data"]["table"]["rows"])}
    conn = await asyncpg.connect(same_server(fed_database_url, popdb))
    try:
        by_scope = await conn.fetchrow(
            """SELECT sum(persons) FILTER (WHERE c.province_code = '79') AS hcm,
                      sum(persons) FILTER (WHERE c.province_code = '79' AND sex = 'F') AS hcm_f,
                      sum(persons) FILTER (WHERE c.code = '79001') AS commune, sum(persons) AS nation
               FROM resident_count r JOIN commune c ON c.code = r.commune_code WHERE r.month = '2026-10-01'"""
        )
    finally:
        await conn.close()
    # Provinces and the nation are the population database's sums over its communes.
    assert [rows[u]["values"][0] for u in ("79", "79001", "VN")] == [
        by_scope["hcm"],
        by_scope["commune"],
        by_scope["nation"],
    ]
    assert body["data"]["f"] == {"value": by_scope["hcm_f"], "provenance": {"source": "popdb"}}
    october = Period(2026, 10, "M")
    assert rows["79"]["values"][1] == tourism_api.arrivals("79", october)
    assert rows["VN"]["values"][1] == tourism_api.arrivals("VN", october)
    assert rows["79001"]["values"][1] is None  # the ministry publishes by province only
    assert rows["79"]["periods"] == ["2026-M10", "2026-M10"]
    assert rows["79"]["statuses"] == ["OFFICIAL", "PRELIMINARY"]
    assert rows["79"]["provenance"] == ["source:popdb", "source:tourism"]
