"""Within one request, one call per source; different sources called at the same time."""

from __future__ import annotations

import time
from decimal import Decimal

from tests.federation.conftest import POPULATION_SQL, block, gql, sources_toml

# Sibling fields reach the sources a few milliseconds apart (each first reads the hub's tables):
# a 200 ms gathering window makes their loads one batch even on a busy machine.
WINDOW = {"batch_window": 0.2}

THREE_SOURCES = """{
  table(indicators: ["POP_MONTHLY", "INTL_VISITORS", "FDI_REG", "RETAIL"], parent: "VN", level: PROVINCE) {
    rows }
  national: table(indicators: ["POP_MONTHLY", "INTL_VISITORS", "FDI_REG"], units: ["VN"]) { rows }
  a: observation(indicator: "POP_MONTHLY", unit: "79", period: "2026-M09") { value }
  b: observation(indicator: "INTL_VISITORS", unit: "01", period: "2026-M10") { value }
  c: observation(indicator: "FDI_REG", unit: "VN", period: "2026-M10") { value }
  series(indicator: "INTL_VISITORS", units: ["48"], from: "2026-M01", to: "2026-M10") { rows }
}"""


async def test_one_query_touching_three_sources_makes_exactly_one_call_to_each(
    start_hub, population, arrivals, stats
) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats, popdb=WINDOW, tourism=WINDOW, statsbank=WINDOW))
    # Once to open the hub's connections (a cold pool adds tens of milliseconds to some fields).
    await gql(hub, THREE_SOURCES)
    for log in (await population.settled(), arrivals.calls, stats.calls):
        log.clear()
    body = await gql(hub, THREE_SOURCES)
    assert "errors" not in body, body
    data = body["data"]
    values = (data["a"]["value"], data["b"]["value"], data["c"]["value"])
    assert values == (Decimal("9876543.21"), 433210, Decimal("3012.25"))
    assert len(block(data["table"]["rows"])) == 34
    # Each upstream's own log: one call, covering every unit and period the fields needed.
    (pop_call,) = await population.settled()
    (arrivals_call,) = arrivals.calls
    (stats_call,) = stats.calls
    assert {"79", "01", "VN"} <= set(arrivals_call["units"]) and len(arrivals_call["units"]) == 35
    assert {"2026-M01", "2026-M10"} <= set(arrivals_call["periods"])
    assert "2026-M09" in pop_call["periods"] and "VN" in pop_call["units"]
    assert stats_call["indicators"] == ["fdi_registered"]


async def test_two_indicators_of_one_source_share_its_one_call(start_hub, population, arrivals, stats) -> None:
    # POP_MONTHLY and IIP both come from the population database: one statement (a UNION ALL).
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(hub, '{ table(indicators: ["POP_MONTHLY", "IIP"], units: ["79"], period: "2026-M10") { rows } }')
    assert "errors" not in body, body
    assert block(body["data"]["table"]["rows"])[0]["values"] == [Decimal("9880001.5"), Decimal("98800.015")]
    assert len(await population.settled()) == 1


async def test_different_sources_are_called_concurrently(start_hub, population, arrivals, stats) -> None:
    slow = {"timeout": 3.0}
    arrivals.delay = stats.delay = 0.6
    toml = sources_toml(
        population,
        arrivals,
        stats,
        population_sql=POPULATION_SQL + " CROSS JOIN pg_sleep(0.6)",
        popdb=slow,
        tourism=slow,
        statsbank=slow,
    )
    hub = await start_hub(toml)
    started = time.monotonic()
    body = await gql(hub, '{ table(indicators: ["POP_MONTHLY", "INTL_VISITORS", "FDI_REG"], units: ["VN"]) { rows } }')
    elapsed = time.monotonic() - started
    assert "errors" not in body, body
    assert block(body["data"]["table"]["rows"])[0]["values"] == [101234567, 1987654, Decimal("3012.25")]
    assert 0.6 <= elapsed < 1.5  # three 0.6 s calls one after another would take 1.8 s


async def test_a_source_that_takes_few_units_per_call_gets_them_split(start_hub, population, arrivals, stats) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats, tourism={"max_units": 10}))
    body = await gql(
        hub, '{ table(indicators: ["INTL_VISITORS"], parent: "VN", level: PROVINCE, period: "2026-M10") { rows } }'
    )
    assert "errors" not in body, body
    assert sorted(len(call["units"]) for call in arrivals.calls) == [4, 10, 10, 10]
    assert {r["unit"]: r["values"][0] for r in block(body["data"]["table"]["rows"])}["79"] == 512345
