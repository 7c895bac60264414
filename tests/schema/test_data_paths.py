"""The data paths' answers for old units, unreadable units and impossible disaggregations (issue 17).

Every path reads unit codes the same way (``unitValidOn``, resolvers/data.py): the demo holds
figures for the 63 provinces up to 2025-06, which must be reachable by their codes, and keys no
indicator can hold are a mistake told to the caller, not a null.
"""

from __future__ import annotations

import pytest

from tests.schema.test_read_api import block, gql


async def old_unit_id(pool, code: str) -> int:
    return await pool.fetchval("SELECT id FROM admin_unit WHERE code = $1 AND valid_to = '2025-06-30'", code)


async def stored(pool, indicator: str, unit_id: int, period: str):
    return await pool.fetchval(
        "SELECT value FROM observation_current WHERE indicator_code = $1 AND unit_id = $2 AND period = $3"
        " AND dims = ''",
        indicator,
        unit_id,
        period,
    )


async def test_series_reports_units_the_caller_may_not_read_as_table_does(hub_url: str) -> None:
    for field in (
        'table(indicators: ["RETAIL"], units: ["79", "01"]) { rows }',
        'series(indicator: "RETAIL", units: ["79", "01"], from: "2026-M01", to: "2026-M02") { rows }',
    ):
        _, body = await gql(hub_url, f"{{ {field} }}", x_test_regions="79")
        name = field.split("(")[0]
        assert [r["unit"] for r in block(body["data"][name]["rows"])] == ["79"]
        assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [([name], "FORBIDDEN")], body
        assert "01" in body["errors"][0]["message"]


async def test_a_table_row_with_no_readable_column_holds_empty_arrays(hub_url: str) -> None:
    query = '{ table(indicators: ["UNEMP"], units: ["01"]) { columns { code } rows } }'
    _, body = await gql(hub_url, query, x_test_indicators="RETAIL")
    assert body["data"]["table"]["columns"] == []
    assert block(body["data"]["table"]["rows"]) == [
        {"unit": "01", "values": [], "periods": [], "statuses": [], "provenance": []}
    ]


async def test_a_table_of_a_pre_reform_period_has_the_63_provinces_of_then(hub_url: str, pool) -> None:
    query = '{ table(indicators: ["RETAIL"], parent: "VN", level: PROVINCE, period: "2024-M05") { rows } }'
    _, body = await gql(hub_url, query)
    assert "errors" not in body, body
    rows = {r["unit"]: r for r in block(body["data"]["table"]["rows"])}
    assert len(rows) == 63 and "02" in rows  # Ha Giang, merged into Tuyen Quang in 2025
    assert rows["02"]["values"] == [await stored(pool, "RETAIL", await old_unit_id(pool, "02"), "2024-M05")]
    assert rows["02"]["values"][0] is not None
    # Today's units by an explicit date: the 34 provinces, with nothing stored for them in 2024.
    query = '{ table(indicators: ["RETAIL"], parent: "VN", level: PROVINCE, period: "2024-M05", unitValidOn: "2026-01-01") { rows } }'
    _, today = await gql(hub_url, query)
    assert len(block(today["data"]["table"]["rows"])) == 34


async def test_every_path_reaches_a_pre_reform_code(hub_url: str, pool) -> None:
    ha_giang = await old_unit_id(pool, "02")
    expected = [await stored(pool, "RETAIL", ha_giang, p) for p in ("2024-M01", "2024-M02")]
    assert None not in expected
    query = '{ series(indicator: "RETAIL", units: ["02"], from: "2024-M01", to: "2024-M02") { rows } observations(indicators: ["RETAIL"], units: ["02"], from: "2024-M01", to: "2024-M02") { edges { node { value period } } } table(indicators: ["RETAIL"], units: ["02"], period: "2024-M02") { rows } }'
    _, body = await gql(hub_url, query)
    assert "errors" not in body, body
    assert block(body["data"]["series"]["rows"])[0]["values"] == expected
    assert [e["node"]["value"] for e in body["data"]["observations"]["edges"]] == expected
    assert block(body["data"]["table"]["rows"])[0]["values"] == expected[1:]


async def test_a_reused_code_names_the_unit_of_the_date_asked(hub_url: str, pool) -> None:
    old_hcmc = await old_unit_id(pool, "79")
    expected = await stored(pool, "RETAIL", old_hcmc, "2024-M03")
    query = '{ observations(indicators: ["RETAIL"], units: ["79"], from: "2024-M03", to: "2024-M03") { edges { node { value } } } series(indicator: "RETAIL", units: ["79"], from: "2024-M03", to: "2024-M03", unitValidOn: "2024-03-31", throughLineage: false) { rows } }'
    _, body = await gql(hub_url, query)
    assert [e["node"]["value"] for e in body["data"]["observations"]["edges"]] == [expected]
    assert block(body["data"]["series"]["rows"])[0]["values"] == [expected]
    # Today's 79 has no value of its own for 2024: only through its lineage.
    query = '{ series(indicator: "RETAIL", units: ["79"], from: "2024-M03", to: "2024-M03", throughLineage: false) { rows } }'
    _, today = await gql(hub_url, query)
    assert block(today["data"]["series"]["rows"])[0]["values"] == [None]


async def test_a_code_no_unit_carried_is_not_found(hub_url: str) -> None:
    query = '{ series(indicator: "RETAIL", units: ["02"], from: "2026-M01", to: "2026-M01", unitValidOn: "2026-01-01") { rows } }'
    _, body = await gql(hub_url, query)
    assert block(body["data"]["series"]["rows"]) == []
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "02" in body["errors"][0]["message"] and "2026-01-01" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "field",
    [
        'observations(indicators: ["POPULATION"], units: ["79"], disaggregation: "SEX=X") { edges { cursor } }',
        'series(indicator: "POPULATION", units: ["79"], from: "2024", to: "2025", disaggregation: "SEX=X") { rows }',
        'series(indicator: "POPULATION", units: ["79"], from: "2024", to: "2025", disaggregation: "FOO=X") { rows }',
        'series(indicator: "POPULATION", units: ["79"], from: "2024", to: "2025", disaggregation: "SEX") { rows }',
        'observation(indicator: "POPULATION", unit: "79", period: "2024", disaggregation: "SEX=X") { value }',
        'aggregate(indicator: "POPULATION", unit: "79", period: "2024", disaggregation: "FOO=F") { value }',
    ],
)
async def test_a_disaggregation_no_indicator_holds_is_bad_user_input(hub_url: str, field: str) -> None:
    _, body = await gql(hub_url, f"{{ {field} }}")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert ("SEX" in error["message"] or "FOO" in error["message"]) and body["data"][field.split("(")[0]] is None


async def test_a_disaggregation_that_exists_still_answers(hub_url: str) -> None:
    query = '{ series(indicator: "POPULATION", units: ["79"], from: "2024", to: "2025", disaggregation: "SEX=F") { disaggregation rows } }'
    _, body = await gql(hub_url, query)
    assert "errors" not in body, body
    assert body["data"]["series"]["disaggregation"] == "SEX=F"
    assert None not in block(body["data"]["series"]["rows"])[0]["values"]
