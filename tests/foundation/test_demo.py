"""The demo data set: real reference data, synthetic communes and observations, loaded idempotently."""

from __future__ import annotations

import asyncpg

from nrhub.demo.load import DEMO_SOURCE, load_demo
from nrhub.demo.reference import read_csv

_TABLES = """
SELECT table_name FROM information_schema.tables
WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name
"""


async def _row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    names = [r["table_name"] for r in await conn.fetch(_TABLES)]
    return {name: await conn.fetchval(f'SELECT count(*) FROM "{name}"') for name in names}


async def test_loading_the_demo_twice_leaves_identical_row_counts(migrated_url):
    conn = await asyncpg.connect(migrated_url)
    try:
        first = await load_demo(conn)
        after_first = await _row_counts(conn)
        second = await load_demo(conn)
        after_second = await _row_counts(conn)
    finally:
        await conn.close()

    assert after_first["observation_revision"] > 100_000
    assert first["observations added"] == after_first["observation_revision"]
    assert second["observations added"] == 0
    assert after_second == after_first


async def test_the_34_provinces_of_the_2025_reform_are_in_force_today(pool):
    rows = await pool.fetch(
        "SELECT code, name_vi FROM admin_unit WHERE level = 'PROVINCE'"
        " AND valid_from <= current_date AND valid_to IS NULL ORDER BY code"
    )
    assert len(rows) == 34
    reference = {r["code"]: r["name_vi"] for r in read_csv("provinces.csv")}
    assert {r["code"]: r["name_vi"] for r in rows} == reference


async def test_each_of_the_63_old_provinces_maps_to_exactly_one_current_province(pool):
    rows = await pool.fetch(
        """
        SELECT o.code, count(n.id) AS successors, min(n.code) AS successor
        FROM admin_unit o
        LEFT JOIN unit_lineage l ON l.old_unit_id = o.id
        LEFT JOIN admin_unit n ON n.id = l.new_unit_id AND n.level = 'PROVINCE' AND n.valid_to IS NULL
        WHERE o.level = 'PROVINCE' AND o.valid_to = '2025-06-30'
        GROUP BY o.code ORDER BY o.code
        """
    )
    assert len(rows) == 63
    assert [r["code"] for r in rows if r["successors"] != 1] == []
    expected = {r["old_code"]: r["new_code"] for r in read_csv("provinces_2004.csv")}
    assert {r["code"]: r["successor"] for r in rows} == expected
    # Every current province is the successor of at least one old one.
    assert len(set(expected.values())) == 34


async def test_codes_reused_by_the_reform_name_one_unit_on_any_day(pool):
    # Code 15 was Yen Bai before the reform and is Lao Cai (which Yen Bai joined) after it.
    rows = await pool.fetch(
        "SELECT name_en, valid_from, valid_to FROM admin_unit WHERE code = '15' ORDER BY valid_from"
    )
    assert [(r["name_en"], str(r["valid_from"]), str(r["valid_to"])) for r in rows] == [
        ("Yen Bai", "2008-08-01", "2025-06-30"),
        ("Lao Cai", "2025-07-01", "None"),
    ]


async def test_communes_are_synthetic_five_digit_units_under_current_provinces(pool):
    rows = await pool.fetch(
        """
        SELECT c.code, c.synthetic, c.name_en, p.code AS province, p.valid_to IS NULL AS province_current
        FROM admin_unit c JOIN admin_unit p ON p.id = c.parent_id
        WHERE c.level = 'COMMUNE'
        """
    )
    assert len(rows) >= 34
    for row in rows:
        assert len(row["code"]) == 5 and row["code"].isdigit(), row
        assert row["code"].startswith(row["province"]), row
        assert row["synthetic"] and "Synthetic" in row["name_en"], row
        assert row["province_current"], row
    assert len({r["province"] for r in rows}) == 34


async def test_observations_are_synthetic_and_span_at_least_five_years(pool):
    years = await pool.fetchval("SELECT count(DISTINCT substr(period, 1, 4)) FROM observation_revision")
    assert years >= 5
    sources = await pool.fetch("SELECT DISTINCT source FROM observation_revision")
    assert [r["source"] for r in sources] == [DEMO_SOURCE]


async def test_old_provinces_have_series_before_the_reform_and_none_after(pool):
    row = await pool.fetchrow(
        """
        SELECT count(*) AS observations, count(DISTINCT o.unit_id) AS units,
               count(DISTINCT substr(o.period, 1, 4)) AS years,
               count(*) FILTER (WHERE period_start(o.period) >= '2025-07-01') AS after_reform
        FROM observation_current o JOIN admin_unit u ON u.id = o.unit_id
        WHERE u.level = 'PROVINCE' AND u.valid_to = '2025-06-30'
        """
    )
    assert row["observations"] > 0
    assert row["units"] == 63
    assert row["years"] >= 4
    assert row["after_reform"] == 0


async def test_every_observation_belongs_to_a_unit_in_force_at_the_end_of_its_period(pool):
    misplaced = await pool.fetchval(
        """
        WITH o AS (
            SELECT unit_id, period,
                   (period_start(period) + make_interval(months => CASE period_frequency(period)
                       WHEN 'A' THEN 12 WHEN 'S' THEN 6 WHEN 'Q' THEN 3 ELSE 1 END))::date - 1 AS last_day
            FROM observation_current
        )
        SELECT count(*) FROM o JOIN admin_unit u ON u.id = o.unit_id
        WHERE o.last_day < u.valid_from OR o.last_day > coalesce(u.valid_to, 'infinity')
        """
    )
    assert misplaced == 0


async def test_the_demo_has_three_regimes_and_the_reference_catalogue(pool):
    counts = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM regime) AS regimes,"
        " (SELECT count(*) FROM agency WHERE kind IN ('MINISTRY', 'MINISTERIAL_AGENCY')) AS agencies,"
        " (SELECT count(*) FROM indicator WHERE code = ANY($1::text[])) AS indicators",
        [r["code"] for r in read_csv("indicators.csv")],
    )
    assert dict(counts) == {"regimes": 3, "agencies": 17, "indicators": 36}
    frequencies = {r["frequency"] for r in await pool.fetch("SELECT frequency FROM regime")}
    assert {"M", "Q", "A"} <= frequencies
