"""Min-max outlier bounds generated from history (issue 19, item 3), through the real API and `nrhub`.

The regimes here are the tests' own (tests/reports/conftest.py): UBND_79 and UBND_01 report
DOSSIERS_TOTAL monthly. Bounds are the mean of a cell's last 24 periods ± k population standard
deviations, rounded outward to the indicator's decimals.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from decimal import Decimal

import asyncpg
import pytest

from nrhub.resolvers.outlier_bounds import OUTLIER_METHODS
from nrhub.resolvers.outliers import minmax_bounds
from tests.reports.conftest import create_test_regime
from tests.reports.flows import key

VN = timezone(timedelta(hours=7))
PERIOD = "2026-M12"  # open on the session's clock; the test regimes take early reports anyway

METHOD = "mutation($r: String!, $m: OutlierMethod!, $k: String!) { setOutlierMethod(regime: $r, method: $m, idempotencyKey: $k) }"
GENERATE = """mutation($r: String!, $u: String, $f: Decimal, $k: String!) {
  generateOutlierBounds(regime: $r, unit: $u, k: $f, idempotencyKey: $k) { regime unit k cells skipped generatedAt } }"""
BOUNDS = """query($r: String!, $u: String) { outlierBounds(regime: $r, unit: $u) {
  regime method bounds { indicator unit disaggregation min max mean standardDeviation k historySize firstPeriod lastPeriod generatedBy } } }"""
OPEN = "mutation($r: String!, $p: Period!, $k: String!) { openDraft(regime: $r, period: $p, idempotencyKey: $k) { submissionId } }"
SAVE = "mutation($s: Int!, $v: [CellInput!]!, $k: String!) { saveValues(submissionId: $s, values: $v, idempotencyKey: $k) { problems { message } } }"
PROBLEMS = "query($s: Int!) { submission(submissionId: $s) { problems { indicator message severity } } }"
SUBMIT = "mutation($s: Int!, $k: String!) { submitReport(submissionId: $s, idempotencyKey: $k) { status problems { message severity } } }"


def code(answer: dict) -> str:
    assert answer.get("errors"), answer
    return answer["errors"][0]["extensions"]["code"]


def test_bounds_are_the_mean_plus_minus_k_deviations_rounded_outward() -> None:
    history = [Decimal(v) for v in (100, 120, 90, 110, 130, 95, 105, 150)]  # mean 112.5, σ = √350 = 18.7083
    found = minmax_bounds(history, Decimal(2), 0)
    assert found is not None
    assert (found.min_value, found.max_value) == (Decimal(75), Decimal(150))  # 75.08 down, 149.92 up
    assert (found.mean, found.std_dev, found.periods) == (Decimal("112.500000"), Decimal("18.708287"), 8)
    one_decimal = minmax_bounds(history, Decimal(2), 1)
    assert one_decimal is not None and (one_decimal.min_value, one_decimal.max_value) == (
        Decimal("75.0"),
        Decimal("150.0"),
    )
    three = minmax_bounds(history, Decimal(3), 2)
    assert three is not None and (three.min_value, three.max_value) == (Decimal("56.37"), Decimal("168.63"))
    # A history without negative values gets no negative minimum; one without spread, its one value.
    skewed = minmax_bounds([Decimal(v) for v in (1, 1, 1, 1, 1, 9)], Decimal(3), 0)
    assert skewed is not None and (skewed.min_value, skewed.max_value) == (Decimal(0), Decimal(12))
    flat = minmax_bounds([Decimal(5)] * 6, Decimal(3), 2)
    assert flat is not None and (flat.min_value, flat.max_value) == (Decimal("5.00"), Decimal("5.00"))
    assert minmax_bounds(history[:5], Decimal(3), 0) is None  # fewer than 6 periods: no bounds


async def test_the_methods_are_the_ones_the_database_allows(pool) -> None:
    check = await pool.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'outlier_method'::regclass AND contype = 'c'"
    )
    assert sorted(m for m in ("Z_SCORE", "MIN_MAX", "NONE", "IQR") if f"'{m}'" in check) == sorted(OUTLIER_METHODS)


async def _history_bounds(pool, unit: str, k: Decimal | int) -> tuple[Decimal, Decimal, int]:
    """PostgreSQL's own mean and population deviation of the unit's last 24 DOSSIERS_TOTAL values, rounded outward."""
    row = await pool.fetchrow(
        "SELECT floor(avg(v) - $2 * stddev_pop(v)) AS low, ceil(avg(v) + $2 * stddev_pop(v)) AS high, count(*) AS n"
        " FROM (SELECT c.value AS v FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id"
        "       WHERE u.code = $1 AND u.valid_to IS NULL AND c.indicator_code = 'DOSSIERS_TOTAL' AND c.dims = ''"
        "       ORDER BY period_end(c.period) DESC LIMIT 24) h",
        unit,
        k,
    )
    return max(row["low"], Decimal(0)), row["high"], row["n"]


async def test_a_value_outside_its_bounds_warns_with_the_figures_a_reader_may_read(gql, token_for, pool) -> None:
    assert await pool.fetchval("SELECT decimals FROM indicator WHERE code = 'DOSSIERS_TOTAL'") == 0
    regime = await create_test_regime(pool, "MINMAX", allow_early=True, expiry_days=None)
    admin = await token_for("VPCP", "admin")
    assert (await gql(admin, METHOD, r=regime, m="MIN_MAX", k=key()))["data"]["setOutlierMethod"] == "MIN_MAX"
    made = (await gql(admin, GENERATE, r=regime, u=None, f=None, k=key()))["data"]["generateOutlierBounds"]
    assert {k: made[k] for k in ("regime", "unit", "k", "cells", "skipped")} == {
        "regime": regime, "unit": None, "k": 3, "cells": 2, "skipped": 0,  # units 79 and 01
    }  # fmt: skip

    low, high, n = await _history_bounds(pool, "79", 3)
    reader = await token_for("UBND_79", "reports:submit data:read indicator:DOSSIERS_TOTAL")
    seen = (await gql(reader, BOUNDS, r=regime, u="79"))["data"]["outlierBounds"]
    assert seen["method"] == "MIN_MAX" and len(seen["bounds"]) == 1
    bound = seen["bounds"][0]
    assert (Decimal(str(bound["min"])), Decimal(str(bound["max"])), bound["historySize"]) == (low, high, n)
    assert bound["k"] == 3 and bound["generatedBy"] and bound["indicator"] == "DOSSIERS_TOTAL"

    opened = await gql(reader, OPEN, r=regime, p=PERIOD, k=key())
    submission = int(opened["data"]["openDraft"]["submissionId"])

    async def outliers_at(value: Decimal, token: str = reader) -> list[dict]:
        cells = [{"indicator": "DOSSIERS_TOTAL", "value": str(value)}]
        assert "errors" not in await gql(reader, SAVE, s=submission, v=cells, k=key())
        problems = (await gql(token, PROBLEMS, s=submission))["data"]["submission"]["problems"]
        return [p for p in problems if "outlier" in p["message"]]

    assert await outliers_at(high) == []  # at the maximum: inside
    assert await outliers_at(low) == []
    assert await outliers_at(high + 1) == [
        {
            "indicator": "DOSSIERS_TOTAL",
            "message": f"an outlier against the min-max bounds from the unit's last {n} periods ({high + 1} is above "
            f"the maximum {high}; bounds {low} to {high}, mean ± 3 standard deviations)",
            "severity": "WARNING",
        }
    ]
    if low > 0:
        below = await outliers_at(low - 1)
        assert len(below) == 1 and f"({low - 1} is below the minimum {low};" in below[0]["message"]

    # Without a grant on the indicator: neither the warning nor the bounds (the method is no figure).
    blind = await token_for("UBND_79", "reports:submit data:read")
    assert await outliers_at(high + 1, blind) == []
    assert (await gql(blind, BOUNDS, r=regime, u=None))["data"]["outlierBounds"] == {
        "regime": regime, "method": "MIN_MAX", "bounds": [],
    }  # fmt: skip

    # NONE judges nothing; Z_SCORE is the modified z-score against the same history.
    assert (await gql(admin, METHOD, r=regime, m="NONE", k=key()))["data"]["setOutlierMethod"] == "NONE"
    assert await outliers_at(high * 10) == []
    await gql(admin, METHOD, r=regime, m="Z_SCORE", k=key())
    [z_score] = await outliers_at(high * 10)
    assert z_score["message"].startswith("an outlier against the unit's last") and "z-score" in z_score["message"]
    methods = await pool.fetch(
        "SELECT before, after FROM audit_entry WHERE action = 'outlier_method.set' AND subject = $1 ORDER BY seq",
        f"outlier_method:{regime}",
    )
    assert [(json.loads(m["before"])["method"], json.loads(m["after"])["method"]) for m in methods] == [
        ("Z_SCORE", "MIN_MAX"), ("MIN_MAX", "NONE"), ("NONE", "Z_SCORE"),
    ]  # fmt: skip

    # A warning does not stop the report: it is submitted, and the answer carries the warning.
    await gql(admin, METHOD, r=regime, m="MIN_MAX", k=key())
    await outliers_at(high + 1)
    submitted = (await gql(reader, SUBMIT, s=submission, k=key()))["data"]["submitReport"]
    assert submitted["status"] == "SUBMITTED"
    assert [p["severity"] for p in submitted["problems"] if "min-max" in p["message"]] == ["WARNING"]


async def test_regenerating_replaces_the_units_bounds_once_per_key(gql, token_for, pool) -> None:
    regime = await create_test_regime(pool, "MINMAX", allow_early=True, expiry_days=None)
    admin = await token_for("VPCP", "admin")
    reader = await token_for("VPCP", "data:read indicator:DOSSIERS_TOTAL")
    await gql(admin, GENERATE, r=regime, u=None, f="3", k=key())
    first = {b["unit"]: b for b in (await gql(reader, BOUNDS, r=regime, u=None))["data"]["outlierBounds"]["bounds"]}
    assert sorted(first) == ["01", "79"]

    once = key()
    again = await gql(admin, GENERATE, r=regime, u="79", f="1.5", k=once)
    assert again["data"]["generateOutlierBounds"]["cells"] == 1
    assert await gql(admin, GENERATE, r=regime, u="79", f="1.5", k=once) == again  # a retry: the first answer
    after = {b["unit"]: b for b in (await gql(reader, BOUNDS, r=regime, u=None))["data"]["outlierBounds"]["bounds"]}
    low, high, _ = await _history_bounds(pool, "79", Decimal("1.5"))
    assert after["01"] == first["01"]  # another unit's bounds stay
    assert after["79"]["k"] == 1.5 and (Decimal(str(after["79"]["min"])), Decimal(str(after["79"]["max"]))) == (
        low,
        high,
    )
    assert first["79"]["min"] < after["79"]["min"] and after["79"]["max"] < first["79"]["max"]
    assert await pool.fetchval("SELECT count(*) FROM outlier_bounds WHERE regime_code = $1", regime) == 2
    entries = await pool.fetch(
        "SELECT actor_agency, after FROM audit_entry WHERE action = 'outlier_bounds.generate' AND subject = $1"
        " ORDER BY seq",
        f"outlier_bounds:{regime}",
    )
    assert [(e["actor_agency"], json.loads(e["after"])) for e in entries] == [
        ("VPCP", {"regime": regime, "unit": None, "k": "3", "cells": 2, "skipped": 0}),
        ("VPCP", {"regime": regime, "unit": "79", "k": "1.5", "cells": 1, "skipped": 0}),
    ]


async def test_bad_input_and_missing_grants_are_refused(gql, token_for, pool) -> None:
    regime = await create_test_regime(pool, "MINMAX", allow_early=True, expiry_days=None)
    admin = await token_for("VPCP", "admin")
    before = await pool.fetchval("SELECT count(*) FROM audit_entry")
    for k in ("0", "-1", "10.5", "NaN"):
        assert code(await gql(admin, GENERATE, r=regime, u=None, f=k, k=key())) == "BAD_USER_INPUT", k
    assert code(await gql(admin, GENERATE, r="NO_SUCH_REGIME", u=None, f=None, k=key())) == "NOT_FOUND"
    assert code(await gql(admin, GENERATE, r=regime, u="NO_SUCH_UNIT", f=None, k=key())) == "NOT_FOUND"
    assert code(await gql(admin, METHOD, r="NO_SUCH_REGIME", m="MIN_MAX", k=key())) == "NOT_FOUND"
    reviewer = await token_for("VPCP", "reports:review data:read")
    assert code(await gql(reviewer, GENERATE, r=regime, u=None, f=None, k=key())) == "FORBIDDEN"
    assert code(await gql(reviewer, METHOD, r=regime, m="NONE", k=key())) == "FORBIDDEN"
    assert code(await gql(reviewer, BOUNDS, r="NO_SUCH_REGIME", u=None)) == "NOT_FOUND"
    assert code(await gql(reviewer, BOUNDS, r=regime, u="NO_SUCH_UNIT")) == "NOT_FOUND"
    assert (await gql(admin, METHOD, r=regime, m="IQR", k=key())).get("errors")  # not an OutlierMethod
    assert await pool.fetchval("SELECT count(*) FROM audit_entry") == before
    assert await pool.fetchval("SELECT count(*) FROM outlier_bounds WHERE regime_code = $1", regime) == 0
    assert await pool.fetchval("SELECT count(*) FROM outlier_method WHERE regime_code = $1", regime) == 0


@pytest.fixture
async def private_demo(clone_demo) -> str:
    """A copy of the demo of the test's own, where a history can be written as it stands."""
    return await clone_demo()


async def test_nrhub_generates_exact_bounds_from_a_known_history(nrhub, private_demo: str) -> None:
    pool = await asyncpg.create_pool(private_demo, min_size=1, max_size=2)
    try:
        regime = await create_test_regime(pool, "MINMAX", allow_early=True, expiry_days=None)
        # An indicator of the test's own (one decimal) in the regime's form, its history in unit 79 written here.
        await pool.execute(
            "INSERT INTO indicator (code, name_vi, name_en, field, unit_of_measure, value_type, decimals, periodicity,"
            " aggregation, responsible_agency) SELECT 'TEST_MINMAX', 'Thử', 'Test', field, 'units', 'DECIMAL', 1, 'M',"
            " 'SUM', responsible_agency FROM indicator WHERE code = 'DOSSIERS_TOTAL'"
        )
        await pool.execute("INSERT INTO regime_item (regime_code, indicator_code) VALUES ($1, 'TEST_MINMAX')", regime)
        unit_id = await pool.fetchval("SELECT id FROM admin_unit WHERE code = '79' AND valid_to IS NULL")
        history = [100, 120, 90, 110, 130, 95, 105, 150]
        await pool.executemany(
            "INSERT INTO observation_revision (indicator_code, unit_id, period, dims, value, status, source, recorded_by)"
            " VALUES ('TEST_MINMAX', $1, $2, '', $3, 'OFFICIAL', 'test', 'test')",
            [(unit_id, f"2026-M{m:02d}", Decimal(v)) for m, v in enumerate(history, start=1)],
        )

        async def generate(*more: str) -> str:
            run = await nrhub("rules", "bounds", "generate", "--regime", regime, *more, database_url=private_demo)
            assert run.returncode == 0, run.stderr
            return run.stdout

        out = await generate("--unit", "79", "--k", "2")
        assert out == (
            f"2 cell(s) of {regime} got bounds (mean ± 2 standard deviations) for unit 79;"
            " 0 had fewer than 6 periods of history\n"
        )
        listed = await nrhub("rules", "bounds", "list", "--regime", regime, "--json", database_url=private_demo)
        assert listed.returncode == 0, listed.stderr
        [bound] = [b for b in json.loads(listed.stdout) if b["indicator"] == "TEST_MINMAX"]
        assert {k: bound[k] for k in ("unit", "disaggregation", "min", "max", "mean")} == {
            "unit": "79", "disaggregation": "", "min": "75.0", "max": "150.0", "mean": "112.500000",
        }  # fmt: skip
        assert (bound["standard_deviation"], bound["k"], bound["history_size"]) == ("18.708287", "2", 8)
        assert (bound["first_period"], bound["last_period"]) == ("2026-M01", "2026-M08")
        assert bound["generated_by"] == "nrhub rules bounds generate"

        # Regenerated with another k, the unit's bounds are replaced; without --unit, the reporters' too.
        await generate("--unit", "79", "--k", "3")
        text = await nrhub("rules", "bounds", "list", "--regime", regime, "--unit", "79", database_url=private_demo)
        assert "79\tTEST_MINMAX\t-\t56.3\t168.7\t8 periods 2026-M01..2026-M08" in text.stdout.splitlines()
        assert "3 cell(s)" in await generate()  # 79's two, and 01's DOSSIERS_TOTAL (it has no TEST_MINMAX)
        every = await nrhub("rules", "bounds", "list", "--regime", regime, database_url=private_demo)
        assert len(every.stdout.splitlines()) == 3
        assert "79\tTEST_MINMAX\t-\t56.3\t168.7\t8 periods 2026-M01..2026-M08" in every.stdout.splitlines()
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM audit_entry WHERE action = 'outlier_bounds.generate' AND subject = $1",
                f"outlier_bounds:{regime}",
            )
            == 3
        )

        # The method, shown and set.
        shown = await nrhub("rules", "outliers", "--regime", regime, database_url=private_demo)
        assert shown.stdout == "Z_SCORE\n"
        await nrhub("rules", "outliers", "--regime", regime, "--method", "MIN_MAX", database_url=private_demo)
        assert await pool.fetchval("SELECT method FROM outlier_method WHERE regime_code = $1", regime) == "MIN_MAX"

        # Bad input: one line, exit status 1, nothing written.
        for args, message in [
            (("--regime", "NO_SUCH_REGIME"), "nrhub: error: there is no regime NO_SUCH_REGIME\n"),
            (("--regime", regime, "--k", "abc"), "nrhub: error: --k abc is not a number\n"),
            (("--regime", regime, "--k", "0"), "nrhub: error: k must be more than 0 and at most 10\n"),
            (("--regime", regime, "--unit", "NOPE"), "nrhub: error: there is no unit NOPE in force today\n"),
        ]:
            bad = await nrhub("rules", "bounds", "generate", *args, database_url=private_demo)
            assert (bad.returncode, bad.stderr) == (1, message), args
        assert await pool.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'outlier_bounds.generate'") == 3
    finally:
        await pool.close()
