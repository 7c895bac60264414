"""Reports under the caller's data grants.

A report's values, its problems (which quote figures) and its history (whose entries hold the saved
cells) show a reader only the cells of indicators it may read in units its region grants cover; the
report's own agency, which entered them, sees every cell. Timeliness shows the receiving agency
every reporter, a reporter itself, and anyone else the reporters whose units its region grants
cover; an auditor's list of reports is limited by its regions the same way. The upload endpoint
answers a report that is not the caller's exactly as one that does not exist, before reading it.
"""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from tests.reports.test_lifecycle import MONTHLY_CELLS, OPEN, SAVE, VN, key

PERIOD = "2026-M01"
PROVINCE, COMMUNE = "91", "91001"
READ = """query($s: Int!) { submission(submissionId: $s) {
  values { unit indicator value } problems { indicator message } history { action after }
  versions { values { unit indicator } } } }"""
TIMELINESS = (
    "query($r: String!, $p: Period!) { timeliness(regime: $r, period: $p) { expected reports { agencyCode } } }"
)
LISTED = 'query($p: Period!) { submissions(regime: "BC_KTXH_THANG", period: $p, first: 100) { edges { node { submissionId } } } }'


@pytest.fixture(scope="module")
async def draft(gql, token_for, clock) -> tuple[int, str]:
    """UBND_91's January draft: every form cell of the province, RETAIL of one of its communes, and a
    negative TRAFFIC_DEATHS, whose problem quotes the figure. Its id and the province's token."""
    province = await token_for("UBND_91", "reports:submit")
    clock.now = datetime(2026, 1, 16, 9, 0, tzinfo=VN)
    opened = (await gql(province, OPEN, r="BC_KTXH_THANG", p=PERIOD, k=key()))["data"]["openDraft"]
    cells = [{"indicator": c, "value": "10"} for c in MONTHLY_CELLS if c != "TRAFFIC_DEATHS"]
    cells += [{"indicator": "TRAFFIC_DEATHS", "value": "-3"}, {"indicator": "RETAIL", "value": "4", "unit": COMMUNE}]
    saved = await gql(province, SAVE, s=opened["submissionId"], v=cells, k=key())
    assert "errors" not in saved and saved["data"]["saveValues"]["problems"] == [], saved
    return int(opened["submissionId"]), province


def cells(answer: dict) -> set[tuple[str, str]]:
    assert "errors" not in answer, answer
    return {(v["unit"], v["indicator"]) for v in answer["data"]["submission"]["values"]}


def saved_keys(answer: dict) -> set[str]:
    """The cells named by the report's "values saved" audit entries, as its history shows them."""
    history = answer["data"]["submission"]["history"]
    return {k for h in history if h["action"] == "submission.values" for k in (h["after"] or {})}


async def test_a_reports_values_problems_and_history_follow_the_readers_grants(draft, gql, token_for) -> None:
    submission, province = draft
    own = await gql(province, READ, s=submission)
    every_cell = {(PROVINCE, c) for c in MONTHLY_CELLS} | {(COMMUNE, "RETAIL")}
    # The agency that entered the figures sees all of them, whatever its token reads elsewhere.
    assert cells(own) == every_cell
    assert any("-3" in p["message"] for p in own["data"]["submission"]["problems"])
    assert saved_keys(own) == {f"{u}|{i}|" for u, i in every_cell}

    retail = {(PROVINCE, "RETAIL"), (COMMUNE, "RETAIL")}
    readers = {  # the receiving agency (VPCP) and an auditor elsewhere (BNV), with narrower grants
        "no data grant": ("VPCP", "reports:review", set()),
        "RETAIL only": ("VPCP", "reports:review data:read indicator:RETAIL", retail),
        "RETAIL in the commune": (
            "VPCP",
            f"reports:review data:read indicator:RETAIL region:{COMMUNE}",
            {(COMMUNE, "RETAIL")},
        ),
        "another province": (
            "VPCP",
            "reports:review data:read indicator:RETAIL indicator:TRAFFIC_DEATHS region:79",
            set(),
        ),
        "auditor of the province": ("BNV", f"audit:read data:read indicator:RETAIL region:{PROVINCE}", retail),
    }
    for name, (agency, scope, expected) in readers.items():
        answer = await gql(await token_for(agency, scope), READ, s=submission)
        assert cells(answer) == expected, name
        report = answer["data"]["submission"]
        assert {(v["unit"], v["indicator"]) for version in report["versions"] for v in version["values"]} <= expected
        assert saved_keys(answer) == {f"{u}|{i}|" for u, i in expected}, name
        shown = {p["indicator"] for p in report["problems"]}
        assert shown <= {i for _, i in expected} and not any("-3" in p["message"] for p in report["problems"]), name


async def test_an_auditor_sees_the_reports_of_its_regions_only(draft, gql, token_for) -> None:
    submission, _ = draft
    elsewhere = await token_for("BNV", "audit:read region:79")
    refused = await gql(elsewhere, READ, s=submission)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN" and refused["data"]["submission"] is None
    listed = await gql(elsewhere, LISTED, p=PERIOD)
    assert submission not in {e["node"]["submissionId"] for e in listed["data"]["submissions"]["edges"]}
    inside = await gql(await token_for("BNV", f"audit:read region:{PROVINCE}"), LISTED, p=PERIOD)
    assert submission in {e["node"]["submissionId"] for e in inside["data"]["submissions"]["edges"]}


async def test_timeliness_shows_the_reporters_the_callers_regions_cover(draft, gql, token_for) -> None:
    async def reporters(agency: str, scope: str, regime: str = "BC_KTXH_THANG", period: str = PERIOD) -> list[str]:
        answer = await gql(await token_for(agency, scope), TIMELINESS, r=regime, p=period)
        assert "errors" not in answer, answer
        timeliness = answer["data"]["timeliness"]
        shown = [r["agencyCode"] for r in timeliness["reports"]]
        assert timeliness["expected"] == len(shown)  # the counts are of what the caller may see
        return shown

    # The receiving agency sees every reporter, whatever its regions.
    assert len(await reporters("VPCP", "reports:review region:79")) == 34
    # A reporter sees itself, and the reporters its regions cover.
    assert await reporters("UBND_01", "reports:submit region:79") == ["UBND_01", "UBND_79"]
    assert await reporters("BTC", "reports:submit region:79") == ["UBND_79"]
    assert await reporters("BNV", f"audit:read region:{PROVINCE}") == [f"UBND_{PROVINCE}"]
    # Without region: scopes a token covers every region; ministries report for the nation, always covered.
    assert len(await reporters("UBND_01", "reports:submit")) == 34
    assert await reporters("BNV", "audit:read region:79", "BC_BO_QUY", "2026-Q1") == ["BTC", "NHNN"]


async def test_uploading_to_a_report_that_is_not_yours_answers_as_for_one_that_does_not_exist(
    draft, token_for, report_hub, pool
) -> None:
    submission, _ = draft
    other = await token_for("UBND_96", "reports:submit")
    missing = int(await pool.fetchval("SELECT max(id) FROM submission")) + 1_000_000
    # A file whose period is wrong for any report: were it parsed, the answer would name the report's period.
    sdmx = "DATAFLOW,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE\nVN:BC_KTXH_THANG(1.0),RETAIL,96,2099-M01,1\n"
    headers = {"Authorization": f"Bearer {other}", "Content-Type": "application/vnd.sdmx.data+csv"}
    async with httpx.AsyncClient() as http:
        answers = {
            target: await http.put(
                f"{report_hub}/reports/{target}/values", content=sdmx, headers=headers | {"Idempotency-Key": key()}
            )
            for target in (submission, missing, 10**20)  # another agency's draft, none, beyond bigint
        }
    for target, answer in answers.items():
        assert answer.status_code == 404, answer.text
        assert answer.json() == {
            "errors": [{"message": f"there is no submission {target}", "extensions": {"code": "NOT_FOUND"}}]
        }
    assert PERIOD not in answers[submission].text
