"""The read API over real HTTP on the demo data, with values checked against the database."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest

GQL = "application/graphql-response+json"


async def gql(url: str, query: str, variables: dict | None = None, **headers: str) -> tuple[int, dict]:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/graphql",
            json={"query": query, "variables": variables},
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )
    return response.status_code, json.loads(response.text, parse_float=Decimal)


def block(value: str | list) -> list:
    return value if isinstance(value, list) else json.loads(value, parse_float=Decimal)


async def current_unit_id(pool, code: str) -> int:
    return await pool.fetchval("SELECT id FROM admin_unit WHERE code = $1 AND valid_to IS NULL", code)


async def test_search_is_accent_insensitive(hub_url: str) -> None:
    status, body = await gql(hub_url, '{ indicators(search: "ty le that nghiep") { edges { node { code } } } }')
    assert status == 200
    assert [e["node"]["code"] for e in body["data"]["indicators"]["edges"]] == ["UNEMP"]


async def test_unit_lineage_of_the_2025_reform(hub_url: str) -> None:
    query = '{ unit(code: "08") { nameEn predecessors { relation unit { code nameEn validTo } } } }'
    _, body = await gql(hub_url, query)
    unit = body["data"]["unit"]
    assert unit["nameEn"] == "Tuyen Quang"
    assert {(p["unit"]["code"], p["unit"]["nameEn"], p["relation"]) for p in unit["predecessors"]} == {
        ("02", "Ha Giang", "MERGED_INTO"),
        ("08", "Tuyen Quang", "MERGED_INTO"),
    }
    _, old = await gql(hub_url, '{ unit(code: "08", validOn: "2024-01-01") { successors { unit { validFrom } } } }')
    assert old["data"]["unit"]["successors"][0]["unit"]["validFrom"] == "2025-07-01"


async def test_table_reads_latest_values(hub_url: str, pool) -> None:
    query = '{ table(indicators: ["RETAIL", "UNEMP"], parent: "VN", level: PROVINCE) { columns { code } rows } }'
    status, body = await gql(hub_url, query)
    assert status == 200 and "errors" not in body
    table = body["data"]["table"]
    assert [c["code"] for c in table["columns"]] == ["RETAIL", "UNEMP"]
    rows = block(table["rows"])
    assert len(rows) == 34
    hcm = next(r for r in rows if r["unit"] == "79")
    expected = await pool.fetchrow(
        "SELECT value, period, status FROM observation_current WHERE indicator_code = 'RETAIL'"
        " AND unit_id = $1 AND dims = '' ORDER BY period DESC LIMIT 1",
        await current_unit_id(pool, "79"),
    )
    assert hcm["values"][0] == expected["value"]
    assert hcm["periods"][0] == expected["period"] == "2026-M10"
    assert hcm["statuses"][0] == expected["status"]
    assert hcm["provenance"][0] == "source:demo-synthetic"


async def test_series_assembles_pre_reform_history_through_lineage(hub_url: str, pool) -> None:
    query = '{ series(indicator: "RETAIL", units: ["79"], from: "2025-M05", to: "2025-M07") { periods rows } }'
    _, body = await gql(hub_url, query)
    series = body["data"]["series"]
    assert series["periods"] == ["2025-M05", "2025-M06", "2025-M07"]
    (row,) = block(series["rows"])
    old = await pool.fetch(
        "SELECT c.period, sum(c.value) AS total, count(*) AS n FROM observation_current c"
        " JOIN admin_unit o ON o.id = c.unit_id WHERE c.indicator_code = 'RETAIL' AND c.dims = ''"
        " AND o.code IN ('74', '77', '79') AND o.valid_to = '2025-06-30' AND c.period IN ('2025-M05', '2025-M06')"
        " GROUP BY c.period ORDER BY c.period"
    )
    assert [r["n"] for r in old] == [3, 3]  # Binh Duong, Ba Ria - Vung Tau and Ho Chi Minh City
    assert row["values"][:2] == [r["total"] for r in old]
    assert row["provenance"][:2] == ["computed:3", "computed:3"]
    assert row["provenance"][2] == "source:demo-synthetic"


async def test_ratio_aggregates_as_ratio_of_sums_from_communes(hub_url: str, pool) -> None:
    province = await current_unit_id(pool, "79")
    query = '{ aggregate(indicator: "ONLINE_PS", unit: "79", period: "2025-Q4") { value provenance { storedParts } } }'
    _, body = await gql(hub_url, query)
    got = body["data"]["aggregate"]
    quarter = ("2025-M10", "2025-M11", "2025-M12")
    communes = await pool.fetch(
        "SELECT c.indicator_code, sum(c.value) AS total, avg(c.value) AS mean FROM observation_current c"
        " JOIN admin_unit u ON u.id = c.unit_id WHERE u.parent_id = $1 AND c.dims = '' AND c.period = ANY($2)"
        " AND c.indicator_code IN ('DOSSIERS_ONLINE', 'DOSSIERS_TOTAL', 'ONLINE_PS') GROUP BY 1 ORDER BY 1",
        province,
        list(quarter),
    )
    online, total, rates = (r for r in communes)
    assert online["indicator_code"] == "DOSSIERS_ONLINE" and rates["indicator_code"] == "ONLINE_PS"
    expected = (online["total"] * 100 / total["total"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert got["value"] == expected
    # Never the mean of the communes' rates, which differs on these figures.
    assert got["value"] != rates["mean"].quantize(Decimal("0.01"), ROUND_HALF_UP)


async def test_ratio_recomputed_from_communes_ignoring_the_provinces_own_figure(hub_url: str, pool) -> None:
    province = await current_unit_id(pool, "79")
    query = '{ aggregate(indicator: "UNEMP", unit: "79", period: "2026-Q1", disaggregation: "SEX=F", fromLevel: COMMUNE) { value provenance { storedParts } } }'
    _, body = await gql(hub_url, query)
    parts = {
        r["indicator_code"]: r
        for r in await pool.fetch(
            "SELECT c.indicator_code, sum(c.value) AS total, count(*) AS n FROM observation_current c"
            " JOIN admin_unit u ON u.id = c.unit_id WHERE u.parent_id = $1 AND u.level = 'COMMUNE'"
            " AND c.period = '2026-Q1' AND c.dims = 'SEX=F' AND c.indicator_code IN ('UNEMPLOYED', 'LABOUR_FORCE')"
            " GROUP BY 1",
            province,
        )
    }
    expected = (parts["UNEMPLOYED"]["total"] * 100 / parts["LABOUR_FORCE"]["total"]).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    # Six communes, numerator and denominator each: 12 stored values, none of them the province's.
    assert body["data"]["aggregate"] == {"value": expected, "provenance": {"storedParts": 12}}
    _, nation = await gql(
        hub_url,
        '{ aggregate(indicator: "UNEMP", unit: "VN", period: "2026-Q1", fromLevel: COMMUNE) { provenance { storedParts } } }',
    )
    communes = await pool.fetchval("SELECT count(*) FROM admin_unit WHERE level = 'COMMUNE' AND valid_to IS NULL")
    assert nation["data"]["aggregate"]["provenance"]["storedParts"] == 2 * communes


async def test_incomplete_parts_give_no_value(hub_url: str) -> None:
    # Data end in October 2026: the year 2026 cannot be summed, so no value rather than a wrong one.
    _, body = await gql(hub_url, '{ aggregate(indicator: "ONLINE_PS", unit: "79", period: "2026") { value status } }')
    assert body["data"]["aggregate"] == {"value": None, "status": None}


async def test_aggregate_of_a_current_province_over_a_pre_reform_year(hub_url: str, pool) -> None:
    _, body = await gql(
        hub_url, '{ aggregate(indicator: "RETAIL", unit: "79", period: "2024") { value provenance { storedParts } } }'
    )
    expected = await pool.fetchval(
        "SELECT sum(c.value) FROM observation_current c JOIN admin_unit o ON o.id = c.unit_id"
        " WHERE c.indicator_code = 'RETAIL' AND c.dims = '' AND o.code IN ('74', '77', '79')"
        " AND o.valid_to = '2025-06-30' AND c.period LIKE '2024-M%'"
    )
    assert body["data"]["aggregate"] == {"value": expected, "provenance": {"storedParts": 36}}


async def test_observations_connection_pages_with_cursors(hub_url: str) -> None:
    query = 'query($after: String) { observations(indicators: ["RETAIL"], units: ["01"], first: 5, after: $after) { edges { cursor node { period value status } } pageInfo { hasNextPage endCursor } } }'
    _, first = await gql(hub_url, query)
    page = first["data"]["observations"]
    assert [e["node"]["period"] for e in page["edges"]] == ["2025-M07", "2025-M08", "2025-M09", "2025-M10", "2025-M11"]
    _, second = await gql(hub_url, query, {"after": page["pageInfo"]["endCursor"]})
    assert second["data"]["observations"]["edges"][0]["node"]["period"] == "2025-M12"


async def test_denied_indicator_is_absent_and_forbidden_at_its_path(hub_url: str) -> None:
    query = '{ indicators(first: 100) { edges { node { code } } } indicator(code: "UNEMP") { code } ok: indicator(code: "RETAIL") { code } table(indicators: ["RETAIL", "UNEMP"], units: ["01"]) { columns { code } rows } }'
    status, body = await gql(hub_url, query, x_test_indicators="RETAIL")
    assert status == 200
    assert [e["node"]["code"] for e in body["data"]["indicators"]["edges"]] == ["RETAIL"]
    assert body["data"]["indicator"] is None and body["data"]["ok"] == {"code": "RETAIL"}
    assert [c["code"] for c in body["data"]["table"]["columns"]] == ["RETAIL"]
    assert len(block(body["data"]["table"]["rows"])[0]["values"]) == 1
    errors = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert errors == {("indicator",): "FORBIDDEN", ("table",): "FORBIDDEN"}


async def test_region_grant_limits_sub_national_values(hub_url: str) -> None:
    query = '{ table(indicators: ["RETAIL"], parent: "VN", level: PROVINCE) { rows } nation: aggregate(indicator: "RETAIL", unit: "VN", period: "2026-M01") { value } other: aggregate(indicator: "RETAIL", unit: "01", period: "2026-M01") { value } }'
    _, body = await gql(hub_url, query, x_test_regions="79")
    assert [r["unit"] for r in block(body["data"]["table"]["rows"])] == ["79"]
    assert body["data"]["nation"]["value"] is not None
    assert body["data"]["other"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body["errors"][0]["path"] == ["other"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ('{ aggregate(indicator: "RETAIL", unit: "79", period: "2026-M13") { value } }', "BAD_USER_INPUT"),
        ('{ unit(code: "99") { code } }', "NOT_FOUND"),
        ('{ indicator(code: "NOPE") { code } }', "NOT_FOUND"),
        ("{ indicators(first: 501) { edges { cursor } } }", "BAD_USER_INPUT"),
        ('{ indicators(after: "garbage!") { edges { cursor } } }', "BAD_USER_INPUT"),
        ('{ indicators(search: "a\\u0000b") { edges { cursor } } }', "BAD_USER_INPUT"),
        ('{ node(id: "bm9wZQ") { id } }', "BAD_USER_INPUT"),
    ],
)
async def test_bad_input_gets_its_documented_code(hub_url: str, query: str, code: str) -> None:
    _, body = await gql(hub_url, query)
    assert body["errors"][0]["extensions"]["code"] == code, body


async def test_node_round_trip(hub_url: str) -> None:
    _, body = await gql(hub_url, '{ indicator(code: "UNEMP") { id } unit(code: "79") { id } }')
    ids = body["data"]
    query = "query($a: ID!, $b: ID!) { a: node(id: $a) { ... on Indicator { code } } b: node(id: $b) { ... on AdministrativeUnit { code } } }"
    _, found = await gql(hub_url, query, {"a": ids["indicator"]["id"], "b": ids["unit"]["id"]})
    assert found["data"] == {"a": {"code": "UNEMP"}, "b": {"code": "79"}}
    _, denied = await gql(
        hub_url, query, {"a": ids["indicator"]["id"], "b": ids["unit"]["id"]}, x_test_indicators="RETAIL"
    )
    assert denied["data"]["a"] is None


async def test_point_lookup_of_one_value(hub_url: str, pool) -> None:
    query = '{ observation(indicator: "RETAIL", unit: "79", period: "2026-M03") { value status period provenance { kind source } unit { code } } }'
    _, body = await gql(hub_url, query)
    expected = await pool.fetchval(
        "SELECT value FROM observation_current WHERE indicator_code = 'RETAIL' AND period = '2026-M03'"
        " AND dims = '' AND unit_id = $1",
        await current_unit_id(pool, "79"),
    )
    assert body["data"]["observation"] == {
        "value": expected,
        "status": "OFFICIAL",
        "period": "2026-M03",
        "provenance": {"kind": "SOURCE", "source": "demo-synthetic"},
        "unit": {"code": "79"},
    }
    _, none = await gql(hub_url, '{ observation(indicator: "RETAIL", unit: "79", period: "2030-M01") { value } }')
    assert none == {"data": {"observation": None}}
    _, region = await gql(hub_url, query, x_test_regions="01")
    assert region["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    _, inside = await gql(hub_url, query, x_test_regions="79")  # the statement that checks regions
    assert "errors" not in inside and inside["data"]["observation"]["value"] == expected
    _, denied = await gql(hub_url, query, x_test_indicators="UNEMP")
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN" and denied["data"]["observation"] is None


async def test_values_are_written_with_their_digits_never_in_exponent_form(hub_url: str, pool) -> None:
    """asyncpg decodes numeric 20000 as Decimal('2E+4'); the API wrote that (issue 17)."""
    row = await pool.fetchrow(
        "SELECT c.indicator_code, u.code, c.period, c.value FROM observation_current c"
        " JOIN admin_unit u ON u.id = c.unit_id WHERE c.dims = '' AND c.value <> 0 AND c.value % 10000 = 0"
        " AND u.valid_to IS NULL ORDER BY c.revision_id LIMIT 1"
    )
    assert row is not None, "the demo has a figure that is a multiple of 10,000"
    query = f'{{ observation(indicator: "{row["indicator_code"]}", unit: "{row["code"]}", period: "{row["period"]}") {{ value }} }}'
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{hub_url}/graphql", json={"query": query})
    text = response.text
    assert '"value":' in text and "E+" not in text and "e+" not in text, text
    assert Decimal(json.loads(text, parse_float=Decimal)["data"]["observation"]["value"]) == row["value"]
