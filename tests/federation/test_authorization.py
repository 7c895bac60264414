"""Authorization before the call: a caller never makes a source answer for what it may not read."""

from __future__ import annotations

from tests.federation.conftest import block, gql, sources_toml

EVERYTHING = """{
  table(indicators: ["POP_MONTHLY", "INTL_VISITORS", "FDI_REG"], parent: "VN", level: PROVINCE) { rows }
  listed: table(indicators: ["INTL_VISITORS"], units: ["01", "79", "48"]) { rows }
  series(indicator: "INTL_VISITORS", units: ["01", "VN"], from: "2026-M09", to: "2026-M10") { rows }
  observations(indicators: ["POP_MONTHLY"], parent: "VN", level: PROVINCE, from: "2026-M10", to: "2026-M10") {
    edges { node { unit { code } } } }
  other: observation(indicator: "INTL_VISITORS", unit: "01", period: "2026-M10") { value }
}"""


async def test_a_region_restricted_client_causes_no_call_for_other_regions(
    start_hub, population, arrivals, stats
) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(hub, EVERYTHING, x_test_regions="79")
    # Ho Chi Minh City's values, the nation's (visible to all), and FORBIDDEN for every unit outside
    # the region named by code (Ha Noi, 48), on every path: none is dropped without a word.
    assert [r["unit"] for r in block(body["data"]["table"]["rows"])] == ["79"]
    assert block(body["data"]["listed"]["rows"])[0]["values"] == [512345]
    assert [r["unit"] for r in block(body["data"]["series"]["rows"])] == ["VN"]
    assert [e["node"]["unit"]["code"] for e in body["data"]["observations"]["edges"]] == ["79", "79", "79"]
    assert body["data"]["other"] is None
    assert sorted((e["path"][0], e["extensions"]["code"]) for e in body["errors"]) == [
        ("listed", "FORBIDDEN"),
        ("listed", "FORBIDDEN"),
        ("other", "FORBIDDEN"),
        ("series", "FORBIDDEN"),
    ]
    # Nothing outside the client's region reached any upstream.
    asked = {unit for call in (*arrivals.calls, *stats.calls, *await population.settled()) for unit in call["units"]}
    assert asked == {"79", "VN"}


async def test_a_client_without_an_indicators_grant_causes_no_call_for_it(
    start_hub, population, arrivals, stats
) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(hub, EVERYTHING, x_test_indicators="POP_MONTHLY,RETAIL")
    assert len(block(body["data"]["table"]["rows"])) == 34
    assert body["data"]["series"] is None and body["data"]["other"] is None
    codes = {(tuple(e["path"]), e["extensions"]["code"]) for e in body["errors"]}
    assert codes == {
        (("table",), "FORBIDDEN"),
        (("listed",), "FORBIDDEN"),
        (("series",), "FORBIDDEN"),
        (("other",), "FORBIDDEN"),
    }
    assert arrivals.calls == [] and stats.calls == []
    assert await population.settled()  # the granted POP_MONTHLY was read


async def test_sources_lists_only_the_indicators_the_caller_may_read(start_hub, population, arrivals, stats) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(hub, "{ sources { name kind state indicators calls } }", x_test_indicators="POP_MONTHLY")
    assert body["data"]["sources"] == [
        {"name": "popdb", "kind": "POSTGRES", "state": "OK", "indicators": ["POP_MONTHLY"], "calls": 0},
        {"name": "statsbank", "kind": "GRAPHQL", "state": "OK", "indicators": [], "calls": 0},
        {"name": "tourism", "kind": "HTTP", "state": "OK", "indicators": [], "calls": 0},
    ]
