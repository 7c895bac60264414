"""The bulk upload names every problem of a file in one pass, on the line an editor shows, and a dry
run (``?dryRun=true``) says the same and saves nothing (issue 19)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx

from nrhub.resolvers.bulk import parse_cells
from tests.reports.flows import OPEN, key

VN = timezone(timedelta(hours=7))
CSV = "text/csv"

# Line numbers as an editor shows them; blank lines count.
BAD_FILE = """indicator,disaggregation,value,unit
RETAIL,,100.5,

NOPE_X,,1,
BUDGET_REV,,abc,
RETAIL,,7,
NEW_ENT,,5.5,
DOSSIERS_TOTAL,,10,99999


TRAFFIC_DEATHS,,x,
DOSSIERS_ONLINE,,20,04001
BUDGET_EXP,,-5,
"""
BAD_ROWS = [4, 5, 6, 8, 11]


def test_rows_are_the_lines_an_editor_shows() -> None:
    text = 'indicator,disaggregation,value\r\n\r\nRETAIL,,1\r\n"X\nY",,2\r\nBUDGET_REV,,z\r\n'
    parsed = parse_cells(text, CSV, "2026-M11")
    assert parsed.rows == [3]
    assert [p.row for p in parsed.problems] == [4, 6]  # a quoted value over two lines is named by its first


async def _draft(gql, token: str, period: str) -> int:
    opened = await gql(token, OPEN, r="BC_KTXH_THANG", p=period, k=key())
    return int(opened["data"]["openDraft"]["submissionId"])


async def _audited(pool, submission: int) -> int:
    return await pool.fetchval("SELECT count(*) FROM audit_entry WHERE subject = $1", f"submission:{submission}")


async def test_every_problem_in_one_pass_on_its_row_and_a_dry_run_saves_nothing(
    gql, token_for, clock, report_hub, pool
) -> None:
    province = await token_for("UBND_04", "reports:submit")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    submission = await _draft(gql, province, "2026-M11")
    url = f"{report_hub}/reports/{submission}/values"
    headers = {"Authorization": f"Bearer {province}", "Content-Type": CSV}
    audited = await _audited(pool, submission)
    async with httpx.AsyncClient(timeout=30) as http:
        dry = await http.put(f"{url}?dryRun=true", content=BAD_FILE, headers=headers)
        real = await http.put(url, content=BAD_FILE, headers=headers | {"Idempotency-Key": key()})
    for answer in (dry, real):
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["saved"] == 0
        assert [e["row"] for e in body["errors"]] == BAD_ROWS, body
        errors = {e["row"]: e["message"] for e in body["errors"]}
        assert errors[4] == "NOPE_X[total]: not a cell of the BC_KTXH_THANG form"
        assert "abc" in errors[5] and "x" in errors[11]
        assert errors[6] == "RETAIL[total]: given again (first on row 2)"
        assert errors[8] == "DOSSIERS_TOTAL[total]: unit 99999 is neither the report's unit nor directly below it"
        # Validation's errors, on the rows of the cells the file gives (warnings may come too).
        failing = {(p["row"], p["message"]) for p in body["problems"] if p["severity"] == "ERROR"}
        assert failing == {
            (7, "NEW_ENT[total]: 5.5 is not a whole number"),
            (13, "BUDGET_EXP[total]: -5 is below the minimum 0"),
        }
        assert {p["row"] for p in body["problems"]} <= {2, 7, 12, 13}
    assert dry.json()["dryRun"] is True and dry.json()["message"] == "dry run: nothing was saved"
    assert "dryRun" not in real.json()
    assert await pool.fetchval("SELECT count(*) FROM submission_value WHERE submission_id = $1", submission) == 0
    assert await _audited(pool, submission) == audited


async def test_a_dry_run_of_a_good_file_says_what_would_be_saved(gql, token_for, clock, report_hub, pool) -> None:
    province = await token_for("UBND_08", "reports:submit")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    submission = await _draft(gql, province, "2026-M11")
    url = f"{report_hub}/reports/{submission}/values"
    headers = {"Authorization": f"Bearer {province}", "Content-Type": CSV}
    good = "indicator,disaggregation,value,unit\nRETAIL,,100.5,\nRETAIL,,40,08001\nNEW_ENT,,3,\n"
    audited = await _audited(pool, submission)
    async with httpx.AsyncClient(timeout=30) as http:
        dry = await http.put(f"{url}?dryRun=true", content=good, headers=headers)
        assert dry.status_code == 200, dry.text
        assert {k: dry.json()[k] for k in ("submission", "saved", "wouldSave", "dryRun", "message")} == {
            "submission": submission,
            "saved": 0,
            "wouldSave": 3,
            "dryRun": True,
            "message": "dry run: nothing was saved",
        }
        assert "errors" not in dry.json()
        assert await pool.fetchval("SELECT count(*) FROM submission_value WHERE submission_id = $1", submission) == 0
        assert await _audited(pool, submission) == audited
        wrong = await http.put(f"{url}?dryRun=yes", content=good, headers=headers)
        assert wrong.status_code == 400 and wrong.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        saved = await http.put(url, content=good, headers=headers | {"Idempotency-Key": key()})
    assert saved.status_code == 200 and saved.json()["saved"] == 3, saved.text
    assert await pool.fetchval("SELECT count(*) FROM submission_value WHERE submission_id = $1", submission) == 3
    assert await _audited(pool, submission) == audited + 1


async def test_a_refused_cell_of_one_unit_is_named_on_its_own_row(gql, token_for, clock, report_hub) -> None:
    province = await token_for("UBND_11", "reports:submit")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    submission = await _draft(gql, province, "2026-M11")
    # Three RETAIL cells, of the province, of one of its communes and of another province's commune.
    text = "indicator,disaggregation,value,unit\nRETAIL,,1,\nRETAIL,,2,11001\nRETAIL,,3,79001\nRETAIL,,4,11\n"
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.put(
            f"{report_hub}/reports/{submission}/values?dryRun=true",
            content=text,
            headers={"Authorization": f"Bearer {province}", "Content-Type": CSV},
        )
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {
            "row": 4,
            "message": "RETAIL[total]: unit 79001 is neither the report's unit nor directly below it",
            "severity": "ERROR",
        },
        {"row": 5, "message": "RETAIL[total]: given again (first on row 2)", "severity": "ERROR"},
    ]
