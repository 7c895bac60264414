"""Values from each kind of source, through every read shape, exactly as the upstream holds them."""

from __future__ import annotations

import base64
from decimal import Decimal

from tests.federation.conftest import GRAPHQL_INDICATOR, block, gql, sources_toml

TABLE = """{ table(indicators: ["POP_MONTHLY", "INTL_VISITORS", "FDI_REG", "RETAIL"], units: ["79", "01", "VN"],
  period: "2026-M10") { columns { code source } rows } }"""


async def test_a_table_shows_each_kind_of_source_with_its_provenance(
    start_hub, population, arrivals, stats, fed_pool
) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(hub, TABLE)
    assert "errors" not in body, body
    table = body["data"]["table"]
    assert [(c["code"], c["source"]) for c in table["columns"]] == [
        ("POP_MONTHLY", "popdb"),
        ("INTL_VISITORS", "tourism"),
        (GRAPHQL_INDICATOR, "statsbank"),
        ("RETAIL", "hub"),
    ]
    rows = {r["unit"]: r for r in block(table["rows"])}
    assert list(rows) == ["01", "79", "VN"]
    hcm = rows["79"]
    # Exact digits from PostgreSQL numeric, the JSON API and the GraphQL API.
    assert hcm["values"][:3] == [Decimal("9880001.5"), 512345, Decimal("812.5")]
    assert str(hcm["values"][0]) == "9880001.5"
    assert hcm["periods"][:3] == ["2026-M10"] * 3
    assert hcm["statuses"][:3] == ["OFFICIAL"] * 3
    assert hcm["provenance"][:3] == ["source:popdb", "source:tourism", "source:statsbank"]
    # The hub's own column is untouched by the federation.
    retail = await fed_pool.fetchval(
        "SELECT c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id WHERE u.code = '79'"
        " AND u.valid_to IS NULL AND c.indicator_code = 'RETAIL' AND c.period = '2026-M10' AND c.dims = ''"
    )
    assert hcm["values"][3] == retail and hcm["provenance"][3] == "source:demo-synthetic"
    assert rows["VN"]["values"][:3] == [101234567, 1987654, Decimal("3012.25")]


async def test_values_the_hub_stored_before_an_indicator_moved_to_a_source_never_show(
    start_hub, population, arrivals, stats, fed_pool
) -> None:
    # FDI_REG keeps its national demo values in the hub's tables; the GraphQL source has 2026-M10 only.
    stored = await fed_pool.fetch(
        "SELECT c.period, c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id"
        " WHERE c.indicator_code = $1 AND u.code = 'VN' AND c.period IN ('2026-M09', '2026-M10') AND c.dims = ''"
        " ORDER BY c.period",
        GRAPHQL_INDICATOR,
    )
    assert len(stored) == 2 and stored[1]["value"] != Decimal("3012.25")
    hub = await start_hub(sources_toml(population, arrivals, stats))
    query = '{ series(indicator: "FDI_REG", units: ["VN"], from: "2026-M09", to: "2026-M10") { rows } }'
    body = await gql(hub, query)
    assert block(body["data"]["series"]["rows"]) == [
        {
            "unit": "VN",
            "values": [None, Decimal("3012.25")],
            "statuses": [None, "OFFICIAL"],
            "provenance": [None, "source:statsbank"],
        }
    ]


async def test_the_latest_value_comes_from_the_sources_recent_periods(start_hub, population, arrivals, stats) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(hub, '{ table(indicators: ["POP_MONTHLY", "INTL_VISITORS"], units: ["79", "48"]) { rows } }')
    rows = {r["unit"]: r for r in block(body["data"]["table"]["rows"])}
    assert rows["79"]["periods"] == ["2026-M10", "2026-M10"]
    assert rows["48"]["values"] == [None, 250001]
    (call,) = arrivals.calls
    assert call["units"] == ["48", "79"] and "2026-M10" in call["periods"] and len(call["periods"]) == 12


async def test_point_lookup_series_and_observations_read_the_source(start_hub, population, arrivals, stats) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    query = """{
      one: observation(indicator: "POP_MONTHLY", unit: "79", period: "2026-M09", disaggregation: "SEX=F") {
        id value status period disaggregation unitOfMeasure provenance { kind source stale ageSeconds }
        unit { code } indicator { code } }
      none: observation(indicator: "INTL_VISITORS", unit: "48", period: "2026-M09") { value }
      series(indicator: "INTL_VISITORS", units: ["79", "VN"], from: "2026-M08", to: "2026-M10") { periods rows }
      observations(indicators: ["POP_MONTHLY"], units: ["79"], from: "2026-M09", to: "2026-M10", first: 4) {
        edges { node { period disaggregation value provenance { source } } } pageInfo { hasNextPage endCursor } }
    }"""
    body = await gql(hub, query)
    assert "errors" not in body, body
    one = body["data"]["one"]
    assert one["value"] == Decimal("5000000.10") and str(one["value"]) == "5000000.10"
    assert one["provenance"] == {"kind": "SOURCE", "source": "popdb", "stale": False, "ageSeconds": None}
    assert (one["unit"]["code"], one["indicator"]["code"], one["unitOfMeasure"]) == ("79", "POP_MONTHLY", "persons")
    assert body["data"]["none"] is None
    rows = {r["unit"]: r for r in block(body["data"]["series"]["rows"])}
    assert rows["79"]["values"] == [None, 401234, 512345]
    assert rows["79"]["provenance"] == [None, "source:tourism", "source:tourism"]
    edges = body["data"]["observations"]["edges"]
    assert [(e["node"]["period"], e["node"]["disaggregation"], e["node"]["value"]) for e in edges] == [
        ("2026-M09", "", Decimal("9876543.21")),
        ("2026-M09", "SEX=F", Decimal("5000000.10")),
        ("2026-M09", "SEX=M", Decimal("4876543.11")),
        ("2026-M10", "", Decimal("9880001.5")),
    ]
    assert body["data"]["observations"]["pageInfo"]["hasNextPage"] is True
    # The next page continues after the cursor, with the source's values in the hub's order.
    after = body["data"]["observations"]["pageInfo"]["endCursor"]
    page2 = await gql(
        hub,
        '{ observations(indicators: ["POP_MONTHLY"], units: ["79"], from: "2026-M09", to: "2026-M10", first: 4, '
        f'after: "{after}") {{ edges {{ node {{ disaggregation }} }} pageInfo {{ hasNextPage }} }} }}',
    )
    assert [e["node"]["disaggregation"] for e in page2["data"]["observations"]["edges"]] == ["SEX=F", "SEX=M"]
    # The id of a source's value fetches it again.
    node = await gql(hub, '{ node(id: "' + one["id"] + '") { ... on Observation { value } } }')
    assert node["data"]["node"] == {"value": Decimal("5000000.10")}
    assert base64.urlsafe_b64decode(one["id"] + "==").decode().startswith("Observation:POP_MONTHLY:")


async def test_a_code_reused_by_the_reform_never_lends_the_old_units_values(
    start_hub, population, arrivals, stats
) -> None:
    # The population database answers 79 for 2024-M10 (old Ho Chi Minh City); the new province 79
    # exists only since 2025-07-01, so that value is never shown as the new province's own.
    hub = await start_hub(sources_toml(population, arrivals, stats))
    series = '{ series(indicator: "POP_MONTHLY", units: ["79"], from: "2024-M10", to: "2024-M10"%s) { rows } }'
    body = await gql(hub, series % ", throughLineage: false")
    assert block(body["data"]["series"]["rows"])[0]["values"] == [None]
    assert await population.settled() == []
    # Through the lineage (the default), the cell is the three old provinces' sum (1 + 2 + 3), as the
    # hub's own series computes it: old 79 counts once, as one of the parts, never as the whole.
    body = await gql(hub, series % "")
    (row,) = block(body["data"]["series"]["rows"])
    assert (row["values"], row["provenance"]) == ([6], ["computed:3"])
    assert [sorted(c["units"]) for c in await population.settled()] == [["74", "77", "79"]]
