"""Aggregates of indicators a source serves: the hub's rule over the source's values.

The second half pins the two implementations of the rule to each other: a source (``mirror``)
serves some of the demo's indicators from the very rows the hub's own aggregation function reads,
so the GraphQL answer (walked over the source) must equal ``aggregate_observation`` run in SQL
(the hub's store) digit for digit, for every rule, the 2025 lineage, ``fromLevel`` and rates whose
numerator lives in a source and denominator in the hub.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import asyncpg
import pytest

from nrhub.auth.principal import Grants, Principal
from nrhub.config.settings import load_settings
from nrhub.resolvers.aggregates import LEVELS
from nrhub.resolvers.periods import Period, period_range
from nrhub.resolvers.tables import fetch_series
from nrhub.web.app import create_app
from tests.federation.conftest import POLICY, _toml_value, block, gql, sources_toml
from tests.federation.upstreams import serve, stop

AGGREGATE = "aggregate(indicator: {i}, unit: {u}, period: {p}{extra}) {{ value status provenance {{ kind source storedParts stale }} }}"


def aggregate(indicator: str, unit: str, period: str, extra: str = "") -> str:
    return (
        "{ " + AGGREGATE.format(i=json.dumps(indicator), u=json.dumps(unit), p=json.dumps(period), extra=extra) + " }"
    )


async def test_a_stored_value_a_quarter_and_an_incomplete_level(
    start_hub, population, arrivals, stats, fed_pool
) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    # The source holds the nation's figure: it is the aggregate, one stored part.
    body = await gql(hub, aggregate("INTL_VISITORS", "VN", "2026-M10"))
    assert body["data"]["aggregate"] == {
        "value": 1987654,
        "status": "OFFICIAL",
        "provenance": {"kind": "COMPUTED", "source": "tourism", "storedParts": 1, "stale": False},
    }
    # A quarter of a monthly SUM indicator: its three months, asked in one call.
    arrivals.calls.clear()
    body = await gql(hub, aggregate("INTL_VISITORS", "31", "2026-Q3"))
    assert body["data"]["aggregate"]["value"] == 100001 + 100002 + 100003
    assert body["data"]["aggregate"]["provenance"]["storedParts"] == 3
    (call,) = arrivals.calls
    assert call["units"] == ["31"] and call["periods"] == ["2026-M07", "2026-M08", "2026-M09"]
    # The nation from its provinces: all 34 asked in one call. Only three answer; the others'
    # communes are asked next, in one call, and have nothing: so no value (never a partial sum).
    arrivals.calls.clear()
    body = await gql(hub, aggregate("INTL_VISITORS", "VN", "2026-M10", ", fromLevel: PROVINCE"))
    assert "errors" not in body, body
    assert body["data"]["aggregate"]["value"] is None and body["data"]["aggregate"]["status"] is None
    provinces, communes = arrivals.calls
    assert len(provinces["units"]) == 34 and "VN" not in provinces["units"] and provinces["periods"] == ["2026-M10"]
    communes_of = await fed_pool.fetch(
        "SELECT c.code, p.code AS province FROM admin_unit c JOIN admin_unit p ON p.id = c.parent_id"
        " WHERE c.level = 'COMMUNE' AND c.valid_to IS NULL AND p.valid_to IS NULL"
    )
    expected = sorted(r["code"] for r in communes_of if r["province"] not in ("79", "01", "48"))
    assert sorted(communes["units"]) == expected and len(expected) > 0


async def test_a_current_province_before_the_reform_through_the_provinces_it_absorbed(
    start_hub, population, arrivals, stats
) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(hub, aggregate("POP_MONTHLY", "79", "2024-M10"))
    # Old 79, 74 and 77 (1 + 2 + 3); the population database's "79" of 2024 is old Ho Chi Minh
    # City, asked for as a part, never lent to the new province as its own value.
    assert body["data"]["aggregate"]["value"] == 6
    assert body["data"]["aggregate"]["provenance"]["storedParts"] == 3
    calls = await population.settled()
    assert [sorted(c["units"]) for c in calls] == [["74", "77", "79"]]


async def test_a_stock_over_a_quarter_is_its_last_month(start_hub, population, arrivals, stats) -> None:
    # POP_MONTHLY counts residents at each month's end (rule LAST): a quarter is its last month,
    # not three months of the same people added up.
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(hub, aggregate("POP_MONTHLY", "79", "2026-Q3"))
    assert body["data"]["aggregate"]["value"] == Decimal("9876543.21")
    assert body["data"]["aggregate"]["provenance"]["storedParts"] == 3


async def test_the_aggregate_is_authorized_before_the_source_is_asked(start_hub, population, arrivals, stats) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats))
    no_grant = await gql(hub, aggregate("INTL_VISITORS", "VN", "2026-M10"), x_test_indicators="RETAIL")
    other_region = await gql(hub, aggregate("INTL_VISITORS", "79", "2026-M10"), x_test_regions="01")
    assert no_grant["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND")
    assert other_region["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert arrivals.calls == []
    # The nation stays readable to a caller limited to one province (DESIGN, scopes), and its
    # value is computed from every province, as the hub's own aggregates are.
    body = await gql(hub, aggregate("INTL_VISITORS", "VN", "2026-M10", ", fromLevel: PROVINCE"), x_test_regions="79")
    assert "errors" not in body, body
    assert len(arrivals.calls[0]["units"]) == 34


async def test_a_source_that_fails_gives_an_error_not_a_wrong_value(start_hub, population, arrivals, stats) -> None:
    arrivals.mode = "500"
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(hub, aggregate("INTL_VISITORS", "31", "2026-Q3"))
    assert body["data"]["aggregate"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE" and "tourism" in error["message"]


async def test_a_series_whose_source_fails_has_null_cells_and_one_error(start_hub, population, arrivals, stats) -> None:
    arrivals.mode = "500"
    hub = await start_hub(sources_toml(population, arrivals, stats))
    # 2025-M05 and M06 come through the lineage (one walk), M07 and M08 from the source directly.
    body = await gql(
        hub, '{ series(indicator: "INTL_VISITORS", units: ["79"], from: "2025-M05", to: "2025-M08") { rows } }'
    )
    (row,) = block(body["data"]["series"]["rows"])
    assert row["values"] == [None] * 4
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE" and "tourism" in error["message"]


# --- the walk over a source against the hub's own SQL, on the same rows

MIRRORED = {
    "BUDGET_REV": "SUM",  # monthly, provinces and the nation: lineage years, the nation from provinces
    "BUDGET_EXP": "LAST",  # monthly: the last month of a quarter
    "LABOUR_FORCE": "AVERAGE",  # quarterly, communes since 2025-Q3; also UNEMP's denominator
    "CPI_YOY": "NONE",  # monthly, no aggregation
    "DOSSIERS_ONLINE": "SUM",  # ONLINE_PS's numerator (its denominator DOSSIERS_TOTAL stays in the hub)
}
MIRROR_SQL = """SELECT u.code AS unit, c.period, c.dims, c.value, c.status
FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id
WHERE c.indicator_code = '{code}' AND u.code = ANY($1) AND c.period = ANY($2)"""
CASES = [
    ("BUDGET_REV", "79", "2024", ""),  # 12 months x 3 old provinces
    ("BUDGET_REV", "79", "2025-Q3", ""),
    ("BUDGET_REV", "VN", "2026-M01", "PROVINCE"),
    ("BUDGET_REV", "VN", "2026-S1", "PROVINCE"),
    ("BUDGET_EXP", "79", "2024-Q2", ""),
    ("BUDGET_EXP", "79", "2025-Q3", ""),
    ("LABOUR_FORCE", "79", "2025-S2", "COMMUNE"),
    ("LABOUR_FORCE", "VN", "2026-Q1", "PROVINCE"),
    ("LABOUR_FORCE", "79", "2026", ""),  # 2026-Q4 is not stored: no value
    ("CPI_YOY", "79", "2026-M03", ""),
    ("CPI_YOY", "79", "2026-Q1", ""),
    ("CPI_YOY", "VN", "2026-M03", "PROVINCE"),
    ("ONLINE_PS", "79", "2025-Q4", ""),
    ("ONLINE_PS", "79", "2026-M03", "COMMUNE"),
    ("UNEMP", "79", "2026-Q1", "COMMUNE"),
    ("UNEMP", "VN", "2025-S2", "PROVINCE"),
]


@pytest.fixture(scope="module")
async def mirror_url(new_demo_database) -> str:
    url = await new_demo_database()
    conn = await asyncpg.connect(url)
    try:
        for code, rule in MIRRORED.items():
            await conn.execute("UPDATE indicator SET source = 'mirror', aggregation = $2 WHERE code = $1", code, rule)
    finally:
        await conn.close()
    return url


@pytest.fixture
async def mirror_hub(mirror_url: str, tmp_path) -> AsyncIterator[str]:
    keys = {"name": "mirror", "kind": "postgres", "url": mirror_url, **POLICY, "timeout": 5.0}
    lines = ["[[source]]", *(f"{k} = {_toml_value(v)}" for k, v in keys.items()), "[source.indicators]"]
    lines += [f"{code} = {_toml_value(MIRROR_SQL.format(code=code))}" for code in MIRRORED]
    path = tmp_path / "mirror.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings(path, environ={}).replace(graphiql=False, pool_min_size=1)

    async def everything(request: Any) -> Principal:
        # The rates with both their components: with one only, a rate is not computed (docs/api.md, "Rates").
        grants = frozenset([*MIRRORED, "ONLINE_PS", "DOSSIERS_TOTAL", "UNEMP", "UNEMPLOYED"])
        return Principal(grants=Grants(grants, None))

    server, task, url = await serve(create_app(settings, mirror_url, authenticate=everything), lifespan="on")
    yield url
    await stop(server, task)


async def sql_aggregate(conn: asyncpg.Connection, case: tuple[str, ...]) -> tuple[str, str | None, int]:
    """What the hub's own SQL (migration 0005/0008) gives on the same rows: digits, status, parts."""
    indicator, unit, period, from_level, *dims = case
    skip = LEVELS[: LEVELS.index(from_level)] if from_level else []
    row = await conn.fetchrow(
        "SELECT a.value, a.status, a.stored_parts FROM admin_unit u, aggregate_observation($1, u.id, $3, $5, $4) a"
        " WHERE u.code = $2 AND u.valid_to IS NULL",
        indicator,
        unit,
        period,
        skip,
        dims[0] if dims else "",
    )
    if row["value"] is None:
        return ("None", None, 0)
    return (str(row["value"]), row["status"], row["stored_parts"])


async def hub_aggregates(hub: str, cases: list[tuple[str, ...]]) -> list[tuple[str, str | None, int]]:
    """The same cases through GraphQL, as aliases of one request (siblings share the source's calls)."""
    fields = []
    for n, (indicator, unit, period, from_level, *dims) in enumerate(cases):
        extra = (f", fromLevel: {from_level}" if from_level else "") + (
            f', disaggregation: "{dims[0]}"' if dims else ""
        )
        fields.append(
            f'a{n}: aggregate(indicator: "{indicator}", unit: "{unit}", period: "{period}"{extra}) '
            "{ value status provenance { storedParts } }"
        )
    body = await gql(hub, "{ " + " ".join(fields) + " }")
    assert "errors" not in body, body
    found = [body["data"][f"a{n}"] for n in range(len(cases))]
    return [(str(f["value"]), f["status"], f["provenance"]["storedParts"]) for f in found]


async def test_the_walk_over_a_source_gives_what_the_hubs_sql_gives(mirror_url: str, mirror_hub: str) -> None:
    conn = await asyncpg.connect(mirror_url)
    try:
        expected = [await sql_aggregate(conn, case) for case in CASES]
    finally:
        await conn.close()
    got = []
    for case in CASES:  # one request each: every walk starts cold
        got += await hub_aggregates(mirror_hub, [case])
    for case, mine, theirs in zip(CASES, got, expected, strict=True):
        # Same digits, not merely the same number: 1.50 and 1.5 would differ here.
        assert mine == theirs, case
    # Every rule gave a value somewhere, so the comparison is not of nulls alone.
    valued = {case[0] for case, mine in zip(CASES, got, strict=True) if mine[0] != "None"}
    assert valued == {"BUDGET_REV", "BUDGET_EXP", "LABOUR_FORCE", "CPI_YOY", "ONLINE_PS", "UNEMP"}


async def test_random_cases_agree_with_the_hubs_sql(mirror_url: str, mirror_hub: str) -> None:
    """60 cases drawn with a fixed seed: units from the nation to communes, every frequency from
    2024 to 2026 (across the reform), fromLevel and disaggregations; 20 aggregates per request."""
    rng = random.Random(20251128)
    conn = await asyncpg.connect(mirror_url)
    try:
        communes = await conn.fetch(
            "SELECT c.code FROM admin_unit c JOIN admin_unit p ON p.id = c.parent_id"
            " WHERE c.level = 'COMMUNE' AND c.valid_to IS NULL AND p.code IN ('79', '01') ORDER BY c.code"
        )
        units = ["VN", "79", "01", "31", "48", *rng.sample([r["code"] for r in communes], 6)]
        periods = [
            f"{y}{suffix}"
            for y in (2024, 2025, 2026)
            for suffix in ("", "-S1", "-S2", "-Q1", "-Q2", "-Q3", "-Q4", "-M02", "-M06", "-M07", "-M09")
        ]
        indicators = [*MIRRORED, "ONLINE_PS", "UNEMP"]
        # A disaggregation only where the indicator has it (any other is refused as BAD_USER_INPUT).
        by_sex = set(
            await conn.fetchval(
                "SELECT array_agg(indicator_code) FROM indicator_dimension WHERE dimension_code = 'SEX'"
            )
        )
        cases = []
        for _ in range(60):
            case = (rng.choice(indicators), rng.choice(units), rng.choice(periods), rng.choice(["", "", "COMMUNE"]))
            cases.append((*case, "SEX=F") if rng.random() < 0.2 and case[0] in by_sex else case)
        expected = [await sql_aggregate(conn, case) for case in cases]
    finally:
        await conn.close()
    got = []
    for first in range(0, len(cases), 20):
        got += await hub_aggregates(mirror_hub, cases[first : first + 20])
    for case, mine, theirs in zip(cases, got, expected, strict=True):
        assert mine == theirs, case
    assert sum(mine[0] != "None" for mine in got) >= 15  # values, not only agreeing nulls


SERIES = [
    ("BUDGET_REV", "2025-M03", "2025-M09"),
    ("BUDGET_EXP", "2025-M05", "2025-M08"),
    ("LABOUR_FORCE", "2024-Q3", "2025-Q4"),
]


async def test_a_series_through_the_lineage_matches_the_hubs_own(mirror_url: str, mirror_hub: str) -> None:
    conn = await asyncpg.connect(mirror_url)
    try:
        ids = [
            await conn.fetchval("SELECT id FROM admin_unit WHERE code = $1 AND valid_to IS NULL", code)
            for code in ("79", "01", "31")
        ]
        expected = {}
        for indicator, first, last in SERIES:
            periods = [str(p) for p in period_range(Period.parse(first), Period.parse(last))]
            text = await fetch_series(conn, indicator, ids, periods, "", derive=True)
            expected[indicator] = json.loads(text, parse_float=Decimal)
    finally:
        await conn.close()
    computed = 0
    for indicator, first, last in SERIES:
        query = f'{{ series(indicator: "{indicator}", units: ["79", "01", "31"], from: "{first}", to: "{last}") {{ rows }} }}'
        body = await gql(mirror_hub, query)
        assert "errors" not in body, body
        got = block(body["data"]["series"]["rows"])
        theirs_by_unit = {row["unit"]: row for row in expected[indicator]}
        assert sorted(row["unit"] for row in got) == sorted(theirs_by_unit)
        for mine in got:
            theirs = theirs_by_unit[mine["unit"]]
            assert [str(v) for v in mine["values"]] == [str(v) for v in theirs["values"]], (indicator, mine["unit"])
            assert mine["statuses"] == theirs["statuses"]
            # Stored cells name their store (the mirror source here, a submission in the hub); the
            # cells derived through the lineage say the same in both: computed from that many parts.
            derived = [p for p in theirs["provenance"] if p and p.startswith("computed:")]
            assert [p for p in mine["provenance"] if p and p.startswith("computed:")] == derived
            computed += len(derived)
    assert computed >= 12  # the comparison covers derived cells, not only stored ones


# --- a mean is rounded to the indicator's decimals, in SQL and over a source alike

MEAN_CASE = ("LABOUR_FORCE", "VN", "2026-Q1", "PROVINCE")


async def expected_mean(conn: asyncpg.Connection) -> str:
    """The mean of the provinces' stored values for MEAN_CASE, rounded half away from zero (as
    PostgreSQL's round) to the indicator's decimals, computed here from the rows themselves."""
    decimals = await conn.fetchval("SELECT decimals FROM indicator WHERE code = $1", MEAN_CASE[0])
    values = await conn.fetch(
        "SELECT c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id"
        " WHERE c.indicator_code = $1 AND c.period = $2 AND c.dims = '' AND u.level = 'PROVINCE'"
        " AND u.valid_from <= '2026-03-31' AND (u.valid_to IS NULL OR u.valid_to >= '2026-03-31')",
        MEAN_CASE[0],
        MEAN_CASE[2],
    )
    assert len(values) == 34  # every province stored: the mean is of them all
    with localcontext() as exact:
        exact.prec = 60
        mean = sum(r["value"] for r in values) / len(values)
        rounded = mean.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    assert rounded != mean  # the case needs rounding, or the test could not fail
    return str(rounded)


@pytest.fixture(scope="module")
async def average_in_hub_url(new_demo_database) -> str:
    """The demo with LABOUR_FORCE a hub indicator aggregated as AVERAGE (the SQL path)."""
    url = await new_demo_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE indicator SET aggregation = 'AVERAGE' WHERE code = $1", MEAN_CASE[0])
    finally:
        await conn.close()
    return url


async def test_a_mean_has_the_indicators_decimals_in_sql(average_in_hub_url: str, tmp_path) -> None:
    conn = await asyncpg.connect(average_in_hub_url)
    try:
        expected = await expected_mean(conn)
    finally:
        await conn.close()
    path = tmp_path / "hub.toml"
    path.write_text("", encoding="utf-8")
    settings = load_settings(path, environ={}).replace(graphiql=False, pool_min_size=1)

    async def everything(request: Any) -> Principal:
        return Principal(grants=Grants(frozenset([MEAN_CASE[0]]), None))

    server, task, url = await serve(create_app(settings, average_in_hub_url, authenticate=everything), lifespan="on")
    try:
        (got,) = await hub_aggregates(url, [MEAN_CASE])
    finally:
        await stop(server, task)
    assert (got[0], got[2]) == (expected, 34)


async def test_a_mean_has_the_indicators_decimals_over_a_source(mirror_url: str, mirror_hub: str) -> None:
    conn = await asyncpg.connect(mirror_url)
    try:
        expected = await expected_mean(conn)
    finally:
        await conn.close()
    (got,) = await hub_aggregates(mirror_hub, [MEAN_CASE])
    assert got[0] == expected
