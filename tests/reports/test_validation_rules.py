"""Validation rules, explanations, outliers and decimals (issue 19, item 3), through the real API.

The demo loads its rules (hub/demo/rules.py): DOSSIERS_ONLINE_LE_TOTAL is an ERROR under the monthly
regime, so the trial's 166.67 % report (90,000 online dossiers of 54,000) cannot be submitted.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from nrhub.demo.rules import load_rules
from tests.reports.flows import key

VN = timezone(timedelta(hours=7))
# Open on the clock below (cut-off window from 15 Nov), and counted by no timeliness test.
PERIOD = "2026-M12"
MONTHLY_CELLS = ["RETAIL", "BUDGET_REV", "BUDGET_EXP", "NEW_ENT", "TRAFFIC_DEATHS", "DOSSIERS_ONLINE", "DOSSIERS_TOTAL"]

OPEN = "mutation($r: String!, $p: Period!, $k: String!) { openDraft(regime: $r, period: $p, idempotencyKey: $k) { submissionId } }"
SAVE = "mutation($s: Int!, $v: [CellInput!]!, $k: String!) { saveValues(submissionId: $s, values: $v, idempotencyKey: $k) { problems { message } } }"
SUBMIT = """mutation($s: Int!, $k: String!, $e: [ExplanationInput!]) {
  submitReport(submissionId: $s, idempotencyKey: $k, explanations: $e) { status explanations { rule explanation } }
}"""
PROBLEMS = "query($s: Int!) { submission(submissionId: $s) { status problems { indicator message severity rule } explanations { rule explanation } } }"
UPSERT = """mutation($i: ValidationRuleInput!, $k: String!) {
  upsertValidationRule(input: $i, idempotencyKey: $k) { code leftSide operator rightSide expression importance indicators regimes }
}"""
DELETE = "mutation($c: String!, $k: String!) { deleteValidationRule(code: $c, idempotencyKey: $k) }"
ANALYSIS = """query($f: Period!, $t: Period!, $u: String!, $r: [String!], $g: [String!]) {
  validationAnalysis(from: $f, to: $t, unit: $u, rules: $r, regimes: $g) {
    rulesRun rulesSkipped truncated violations { rule importance unit period leftValue rightValue }
  }
}"""


def code(response: dict) -> str:
    assert response.get("errors"), response
    return response["errors"][0]["extensions"]["code"]


def rule_input(code_: str, left: str, operator: str, right: str, importance: str = "ERROR", **more) -> dict:
    return {
        "code": code_,
        "nameVi": "Quy tắc thử",
        "nameEn": "A test rule",
        "leftSide": left,
        "operator": operator,
        "rightSide": right,
        "importance": importance,
        **more,
    }


async def last_month(pool, unit: str) -> dict[str, Decimal]:
    rows = await pool.fetch(
        "SELECT c.indicator_code, c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id"
        " WHERE u.code = $1 AND u.valid_to IS NULL AND c.period = '2026-M10' AND c.dims = ''",
        unit,
    )
    return {r["indicator_code"]: r["value"] for r in rows}


async def draft(gql, token: str, pool, unit: str, **changed: str) -> int:
    """A monthly draft of the province, last month's figures with ``changed`` ones replaced."""
    opened = await gql(token, OPEN, r="BC_KTXH_THANG", p=PERIOD, k=key())
    submission = int(opened["data"]["openDraft"]["submissionId"])
    base = await last_month(pool, unit)
    values = [{"indicator": c, "value": changed.get(c, str(base[c]))} for c in MONTHLY_CELLS]
    saved = await gql(token, SAVE, s=submission, v=values, k=key())
    assert saved["data"]["saveValues"]["problems"] == []
    return submission


@pytest.fixture
def vn_morning(clock) -> None:
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)


async def test_the_166_percent_report_is_refused_by_the_demo_error_rule(gql, token_for, pool, vn_morning) -> None:
    province = await token_for("UBND_14", "reports:submit")
    submission = await draft(gql, province, pool, "14", DOSSIERS_ONLINE="90000", DOSSIERS_TOTAL="54000")
    problems = (await gql(province, PROBLEMS, s=submission))["data"]["submission"]["problems"]
    assert [p for p in problems if p["rule"]] == [
        {
            "indicator": "DOSSIERS_ONLINE",
            "message": "DOSSIERS_ONLINE_LE_TOTAL (Online dossiers do not exceed all dossiers): "
            "DOSSIERS_ONLINE <= DOSSIERS_TOTAL fails with 90000 <= 54000",
            "severity": "ERROR",
            "rule": "DOSSIERS_ONLINE_LE_TOTAL",
        }
    ]
    refused = await gql(province, SUBMIT, s=submission, k=key(), e=None)
    assert code(refused) == "BAD_USER_INPUT"
    assert "DOSSIERS_ONLINE_LE_TOTAL" in refused["errors"][0]["message"]
    # An explanation does not lift an ERROR rule.
    explained = await gql(
        province, SUBMIT, s=submission, k=key(), e=[{"rule": "DOSSIERS_ONLINE_LE_TOTAL", "explanation": "x"}]
    )
    assert code(explained) == "BAD_USER_INPUT"
    assert await pool.fetchval("SELECT status FROM submission WHERE id = $1", submission) == "DRAFT"
    assert await pool.fetchval("SELECT count(*) FROM submission_explanation WHERE submission_id = $1", submission) == 0


async def test_a_warning_rule_needs_an_explanation_which_reviewers_with_the_grants_see(
    gql, token_for, pool, vn_morning
) -> None:
    admin = await token_for("VPCP", "admin")
    share = rule_input(
        "TEST_ONLINE_SHARE", "DOSSIERS_ONLINE * 100 / DOSSIERS_TOTAL", "LESS_THAN_OR_EQUAL_TO", "60", "WARNING"
    )
    made = (await gql(admin, UPSERT, i={**share, "regimes": ["BC_KTXH_THANG"]}, k=key()))["data"][
        "upsertValidationRule"
    ]
    assert made["expression"] == "DOSSIERS_ONLINE * 100 / DOSSIERS_TOTAL <= 60"
    try:
        province = await token_for("UBND_15", "reports:submit")
        submission = await draft(gql, province, pool, "15", DOSSIERS_ONLINE="3500", DOSSIERS_TOTAL="5000")
        problems = (await gql(province, PROBLEMS, s=submission))["data"]["submission"]["problems"]
        warned = [p for p in problems if p["rule"] == "TEST_ONLINE_SHARE"]
        assert [(p["severity"], p["message"]) for p in warned] == [
            ("WARNING", "TEST_ONLINE_SHARE (A test rule): DOSSIERS_ONLINE * 100 / DOSSIERS_TOTAL <= 60 fails with "
             "70 <= 60; explain it to submit")
        ]  # fmt: skip
        unexplained = await gql(province, SUBMIT, s=submission, k=key(), e=None)
        assert code(unexplained) == "BAD_USER_INPUT" and "TEST_ONLINE_SHARE" in unexplained["errors"][0]["message"]
        blank = await gql(
            province, SUBMIT, s=submission, k=key(), e=[{"rule": "TEST_ONLINE_SHARE", "explanation": " "}]
        )
        assert code(blank) == "BAD_USER_INPUT"
        stray = [
            {"rule": "TEST_ONLINE_SHARE", "explanation": "x"},
            {"rule": "DOSSIERS_ONLINE_LE_TOTAL", "explanation": "x"},
        ]
        assert code(await gql(province, SUBMIT, s=submission, k=key(), e=stray)) == "BAD_USER_INPUT"
        why = "A new one-stop portal moved most dossiers online in November."
        # Two submits at once: one wins, the other is a CONFLICT (not an error of the explanations' table).
        given = [{"rule": "TEST_ONLINE_SHARE", "explanation": why}]
        both = await asyncio.gather(*(gql(province, SUBMIT, s=submission, k=key(), e=given) for _ in range(2)))
        assert sorted(bool(r.get("errors")) for r in both) == [False, True], both
        assert [code(r) for r in both if r.get("errors")] == ["CONFLICT"]
        done = next(r for r in both if not r.get("errors"))
        assert done["data"]["submitReport"] == {
            "status": "SUBMITTED",
            "explanations": [{"rule": "TEST_ONLINE_SHARE", "explanation": why}],
        }
        audit = await pool.fetchval(
            "SELECT after FROM audit_entry WHERE action = 'submission.submit' AND subject = $1",
            f"submission:{submission}",
        )
        assert '"TEST_ONLINE_SHARE"' in audit and why in audit

        reviewer = await token_for("VPCP", "reports:review data:read field:public_administration")
        seen = (await gql(reviewer, PROBLEMS, s=submission))["data"]["submission"]
        assert seen["explanations"] == [{"rule": "TEST_ONLINE_SHARE", "explanation": why}]
        assert any(p["rule"] == "TEST_ONLINE_SHARE" for p in seen["problems"])
        # A reviewer who may not read the dossiers sees neither the breach (it quotes them) nor its explanation.
        blind = (await gql(await token_for("VPCP", "reports:review"), PROBLEMS, s=submission))["data"]["submission"]
        assert blind["explanations"] == [] and [p for p in blind["problems"] if p["rule"]] == []

        # Kept as submitted: neither changed nor added to afterwards, whoever connects.
        for statement in (
            "UPDATE submission_explanation SET explanation = 'other' WHERE submission_id = $1",
            "INSERT INTO submission_explanation VALUES ($1, 'OTHER', 'late addition')",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await pool.execute(statement, submission)
    finally:
        assert (await gql(admin, DELETE, c="TEST_ONLINE_SHARE", k=key()))["data"]["deleteValidationRule"] is True


REVIEW = "mutation($s: Int!, $k: String!) { reviewReport(submissionId: $s, decision: ACCEPT, idempotencyKey: $k) { status } }"
CORRECT = """mutation($s: Int!, $c: [CellInput!]!, $k: String!) {
  correctValue(submissionId: $s, cells: $c, reason: "Dossiers recounted after the portal audit", idempotencyKey: $k) {
    status explanations { rule explanation }
  }
}"""


async def test_a_correction_breaching_a_warning_rule_is_explained_by_its_reason(
    gql, token_for, pool, vn_morning
) -> None:
    admin = await token_for("VPCP", "admin")
    share = rule_input(
        "TEST_ONLINE_SHARE_2", "DOSSIERS_ONLINE * 100 / DOSSIERS_TOTAL", "LESS_THAN_OR_EQUAL_TO", "60", "WARNING"
    )
    assert (await gql(admin, UPSERT, i=share, k=key()))["data"]["upsertValidationRule"]["regimes"] == []
    try:
        province = await token_for("UBND_22", "reports:submit")
        submission = await draft(gql, province, pool, "22", DOSSIERS_ONLINE="1000", DOSSIERS_TOTAL="5000")
        assert (await gql(province, SUBMIT, s=submission, k=key(), e=None))["data"]["submitReport"]["status"] == (
            "SUBMITTED"
        )
        office = await token_for("VPCP", "reports:review")
        assert (await gql(office, REVIEW, s=submission, k=key()))["data"]["reviewReport"]["status"] == "ACCEPTED"
        cells = [{"indicator": "DOSSIERS_ONLINE", "value": "3500"}]
        corrected = (await gql(province, CORRECT, s=submission, c=cells, k=key()))["data"]["correctValue"]
        assert corrected == {
            "status": "SUBMITTED",
            "explanations": [
                {"rule": "TEST_ONLINE_SHARE_2", "explanation": "Dossiers recounted after the portal audit"}
            ],
        }
    finally:
        assert (await gql(admin, DELETE, c="TEST_ONLINE_SHARE_2", k=key()))["data"]["deleteValidationRule"] is True


async def test_rules_are_defined_by_admins_only_and_their_cells_checked(gql, token_for, pool) -> None:
    admin = await token_for("VPCP", "admin")
    before = await pool.fetchval("SELECT count(*) FROM audit_entry")
    reporter = await token_for("UBND_14", "reports:submit data:read field:public_administration")
    rule = rule_input("TEST_PARTS", "POPULATION[sex=M] + POPULATION[SEX=F]", "EQUAL_TO", "POPULATION")
    assert code(await gql(reporter, UPSERT, i=rule, k=key())) == "FORBIDDEN"
    assert code(await gql(reporter, DELETE, c="DOSSIERS_ONLINE_LE_TOTAL", k=key())) == "FORBIDDEN"
    for left, right, says in [
        ("NOPE + POPULATION", "POPULATION", "there is no indicator NOPE"),
        ("POPULATION[OWNERSHIP=FDI]", "POPULATION", "POPULATION is not disaggregated by OWNERSHIP"),
        ("POPULATION[SEX=X]", "POPULATION", "SEX has no value X"),
        ("(POPULATION", "POPULATION", "a parenthesis is not closed"),
        ("2 + 2", "4", "it names no indicator"),
    ]:
        refused = await gql(admin, UPSERT, i={**rule, "leftSide": left, "rightSide": right}, k=key())
        assert code(refused) == "BAD_USER_INPUT" and says in refused["errors"][0]["message"], refused
    no_regime = await gql(admin, UPSERT, i={**rule, "regimes": ["NO_SUCH_REGIME"]}, k=key())
    assert code(no_regime) == "BAD_USER_INPUT"
    assert await pool.fetchval("SELECT count(*) FROM audit_entry") == before
    assert await pool.fetchval("SELECT count(*) FROM validation_rule WHERE code = 'TEST_PARTS'") == 0

    once = key()
    made = (await gql(admin, UPSERT, i=rule, k=once))["data"]["upsertValidationRule"]
    assert made == {
        "code": "TEST_PARTS",
        "leftSide": "POPULATION[SEX=M] + POPULATION[SEX=F]",
        "operator": "EQUAL_TO",
        "rightSide": "POPULATION",
        "expression": "POPULATION[SEX=M] + POPULATION[SEX=F] == POPULATION",
        "importance": "ERROR",
        "indicators": ["POPULATION"],
        "regimes": [],
    }
    assert (await gql(admin, UPSERT, i=rule, k=once))["data"]["upsertValidationRule"] == made  # a retry
    entries = await pool.fetch(
        "SELECT action FROM audit_entry WHERE subject = 'validation_rule:TEST_PARTS' ORDER BY seq"
    )
    assert [e["action"] for e in entries] == ["rule.create"]
    assert (await gql(admin, DELETE, c="TEST_PARTS", k=key()))["data"]["deleteValidationRule"] is True
    assert code(await gql(admin, DELETE, c="TEST_PARTS", k=key())) == "NOT_FOUND"
    entries = await pool.fetch(
        "SELECT action FROM audit_entry WHERE subject = 'validation_rule:TEST_PARTS' ORDER BY seq"
    )
    assert [e["action"] for e in entries] == ["rule.create", "rule.delete"]


async def test_more_decimals_than_the_indicator_has_are_an_error(gql, token_for, pool, vn_morning) -> None:
    province = await token_for("UBND_19", "reports:submit")
    submission = await draft(gql, province, pool, "19", RETAIL="52345.678", BUDGET_REV="1200.50")
    problems = (await gql(province, PROBLEMS, s=submission))["data"]["submission"]["problems"]
    decimals = [p for p in problems if "decimal" in p["message"]]
    assert decimals == [
        {"indicator": "RETAIL", "message": "52345.678 has more than 2 decimals", "severity": "ERROR", "rule": None}
    ]
    assert code(await gql(province, SUBMIT, s=submission, k=key(), e=None)) == "BAD_USER_INPUT"
    await gql(province, SAVE, s=submission, v=[{"indicator": "RETAIL", "value": "52345.670"}], k=key())
    problems = (await gql(province, PROBLEMS, s=submission))["data"]["submission"]["problems"]
    assert [p for p in problems if "decimal" in p["message"]] == []


async def test_an_outlier_quotes_the_history_only_to_callers_who_may_read_it(gql, token_for, pool, vn_morning) -> None:
    history = await pool.fetch(
        "SELECT c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id WHERE u.code = '20'"
        " AND u.valid_to IS NULL AND c.indicator_code = 'RETAIL' AND c.dims = ''"
        " AND period_end(c.period) < period_end($1) ORDER BY period_end(c.period) DESC LIMIT 24",
        PERIOD,
    )
    values = sorted(r["value"] for r in history)
    assert len(values) == 16  # the 2025 province's months since 1 July 2025, not its predecessor's
    median = (values[7] + values[8]) / 2
    reader = await token_for("UBND_20", "reports:submit data:read field:growth")
    submission = await draft(gql, reader, pool, "20", RETAIL=str(values[-1] * 10))
    problems = (await gql(reader, PROBLEMS, s=submission))["data"]["submission"]["problems"]
    outliers = [p["message"] for p in problems if "outlier" in p["message"]]
    assert len(outliers) == 1 and outliers[0].startswith(
        f"an outlier against the unit's last 16 periods ({values[-1] * 10} against a median of {median:f}"
    ), outliers
    # Without a grant on RETAIL the history is not read (nor, by row security, readable): no figure leaks.
    blind = await token_for("UBND_20", "reports:submit")
    unseen = (await gql(blind, PROBLEMS, s=submission))["data"]["submission"]["problems"]
    assert [p for p in unseen if "outlier" in p["message"]] == []
    # An outlier is a warning: the report can be submitted without explaining it.
    assert (await gql(reader, SUBMIT, s=submission, k=key(), e=None))["data"]["submitReport"]["status"] == "SUBMITTED"


async def _breaches(pool, part: str, whole: str, units: str = "") -> list[tuple[str, str, Decimal, Decimal]]:
    rows = await pool.fetch(
        "SELECT u.code, a.period, a.value AS part, b.value AS whole FROM observation_current a"
        " JOIN observation_current b ON b.unit_id = a.unit_id AND b.period = a.period AND b.dims = a.dims"
        " JOIN admin_unit u ON u.id = a.unit_id"
        f" WHERE a.indicator_code = $1 AND b.indicator_code = $2 AND a.dims = '' AND a.value > b.value"
        f" AND a.period BETWEEN '2021' AND '2025' {units} ORDER BY 1, 2",
        part,
        whole,
    )
    return [(r["code"], r["period"], r["part"], r["whole"]) for r in rows]


async def test_analysis_lists_the_implausible_figures_of_the_demo_data(gql, token_for, pool) -> None:
    office = await token_for("VPCP", "data:read field:social field:environment")
    rules = ["HI_INSURED_LE_POP_BASE", "WASTE_TREATED_LE_GENERATED"]
    found = (await gql(office, ANALYSIS, f="2021", t="2025", u="VN", r=rules, g=None))["data"]["validationAnalysis"]
    listed = [(v["rule"], v["unit"], v["period"], Decimal(str(v["leftValue"])), Decimal(str(v["rightValue"])))
              for v in found["violations"]]  # fmt: skip
    insured = await _breaches(pool, "HI_INSURED", "POP_COVER_BASE")
    waste = await _breaches(pool, "WASTE_TREATED", "WASTE_GENERATED")
    assert insured and waste  # the demo's synthetic rates pass 100 % in some province-years
    assert listed == [("HI_INSURED_LE_POP_BASE", *b) for b in insured] + [
        ("WASTE_TREATED_LE_GENERATED", *b) for b in waste
    ]
    assert found["rulesRun"] == rules and found["rulesSkipped"] == [] and found["truncated"] is False
    assert {v["importance"] for v in found["violations"]} == {"WARNING"}

    # A caller limited to one province sees its breaches (and the nation's), no other province's.
    hcm = await token_for("VPCP", "data:read field:social field:environment region:79")
    mine = (await gql(hcm, ANALYSIS, f="2021", t="2025", u="VN", r=rules, g=None))["data"]["validationAnalysis"]
    assert mine["violations"] and all(v in found["violations"] for v in mine["violations"])
    assert [v for v in found["violations"] if v["unit"] in ("79", "VN")] == [
        v for v in mine["violations"] if v["unit"] in ("79", "VN")
    ]
    assert {v["unit"] for v in mine["violations"]}.isdisjoint({"01", "48", "92"})
    assert code(await gql(hcm, ANALYSIS, f="2021", t="2025", u="01", r=rules, g=None)) == "FORBIDDEN"

    # A rule naming an indicator the caller may not read: FORBIDDEN by code, skipped through a regime.
    social = await token_for("VPCP", "data:read field:social")
    assert code(await gql(social, ANALYSIS, f="2021", t="2025", u="VN", r=rules, g=None)) == "FORBIDDEN"
    annual = (await gql(social, ANALYSIS, f="2021", t="2025", u="VN", r=None, g=["BC_KTXH_NAM"]))["data"][
        "validationAnalysis"
    ]
    assert annual["rulesRun"] == ["HI_INSURED_LE_POP_BASE", "POOR_HH_LE_HOUSEHOLDS"]
    assert annual["rulesSkipped"] == ["FOREST_AREA_LE_LAND_AREA"]
    assert len(annual["violations"]) == len(insured)
    assert code(await gql(social, ANALYSIS, f="2021", t="2025-Q1", u="VN", r=None, g=None)) == "BAD_USER_INPUT"


async def test_rules_import_and_analyse_on_the_command_line(nrhub, database_url: str, pool, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[rule]]\ncode = "TEST_CLI_OK"\nname_vi = "a"\nname_en = "b"\nexpression = "POOR_HH <= HOUSEHOLDS"\n'
        'importance = "ERROR"\n\n[[rule]]\ncode = "TEST_CLI_BAD"\nname_vi = "a"\nname_en = "b"\n'
        'expression = "POOR_HH <= HOUSE_HOLDS"\nimportance = "ERROR"\n',
        encoding="utf-8",
    )
    run = await nrhub("rules", "import", str(bad), database_url=database_url)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"nrhub: error: {bad}: rule TEST_CLI_BAD: there is no indicator HOUSE_HOLDS; nothing was imported"
    )
    assert await pool.fetchval("SELECT count(*) FROM validation_rule WHERE code LIKE 'TEST_CLI%'") == 0

    good = tmp_path / "good.toml"
    good.write_text(
        '[[rule]]\ncode = "TEST_CLI_WASTE"\nname_vi = "a"\nname_en = "b"\n'
        'left = "WASTE_TREATED"\noperator = "<="\nright = "WASTE_GENERATED"\nimportance = "WARNING"\n',
        encoding="utf-8",
    )
    try:
        run = await nrhub("rules", "import", str(good), database_url=database_url)
        assert (run.returncode, run.stdout) == (0, "rule.create TEST_CLI_WASTE\n")
        run = await nrhub("rules", "analyse", "--from", "2021", "--to", "2025", "--rule", "TEST_CLI_WASTE",
                          database_url=database_url)  # fmt: skip
        waste = await _breaches(pool, "WASTE_TREATED", "WASTE_GENERATED")
        expected = [f"TEST_CLI_WASTE {u} {p}: {a:f} <= {b:f} is false" for u, p, a, b in waste]
        assert run.stdout.splitlines() == [*expected, f"{len(waste)} breach(es) of 1 rule(s)"]
    finally:
        await pool.execute("DELETE FROM validation_rule WHERE code = 'TEST_CLI_WASTE'")


async def test_loading_the_demo_again_leaves_the_operators_rules_alone(pool) -> None:
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("DELETE FROM validation_rule WHERE code = 'WASTE_TREATED_LE_GENERATED'")
            await conn.execute(
                "UPDATE validation_rule SET importance = 'WARNING' WHERE code = 'FOREST_AREA_LE_LAND_AREA'"
            )
            await load_rules(conn)
            rules = {
                r["code"]: r["importance"] for r in await conn.fetch("SELECT code, importance FROM validation_rule")
            }
            assert "WASTE_TREATED_LE_GENERATED" not in rules and rules["FOREST_AREA_LE_LAND_AREA"] == "WARNING"
        finally:
            await transaction.rollback()
