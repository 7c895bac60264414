"""Timeliness and completeness: a returned report is not submitted, and one question covers many regimes and periods.

The regimes are the tests' own (tests/reports/test_period_locks.py makes them): monthly, deadline the
19th at the end of the day, Vietnam time, never locking; UBND_79 and UBND_01 report one required cell to VPCP.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.reports.conftest import create_test_regime
from tests.reports.test_lifecycle import OPEN, REVIEW, SAVE, SUBMIT, key
from tests.reports.test_period_locks import CELLS, VN

TIMELINESS = """query($r: String!, $p: Period!) { timeliness(regime: $r, period: $p) {
  expected submitted onTime late returned missing submittedRate
  reports { agencyCode state submissionId cellsRequired cellsFilled } } }"""
RATES = """query($from: Period!, $to: Period!, $regimes: [String!], $unit: String, $agency: String,
               $states: [TimelinessState!]) {
  reportingRates(from: $from, to: $to, regimes: $regimes, unit: $unit, agency: $agency, states: $states) {
    total { expected submitted onTime late returned pending overdue missing submittedRate onTimeRate completeness }
    byPeriod { regime period counts { expected submitted overdue } }
    byRegime { regime counts { expected } }
    byAgency { agencyCode counts { expected submitted } }
    reports { regime period agencyCode state } } }"""


pytestmark = pytest.mark.usefixtures("clock_restored")


@pytest.fixture
async def regime(pool) -> str:
    return await create_test_regime(pool, "RATE", allow_early=True, expiry_days=None)


def _states(answer: dict) -> dict[str, str]:
    assert "errors" not in answer, answer
    return {r["agencyCode"]: r["state"] for r in answer["data"]["timeliness"]["reports"]}


async def test_a_returned_report_is_not_submitted_and_its_resubmission_is_judged_by_the_deadline(
    gql, token_for, clock, regime
) -> None:
    hcm = await token_for("UBND_79", "reports:submit")
    office = await token_for("VPCP", "reports:review")
    clock.now = datetime(2027, 3, 10, 9, tzinfo=VN)
    draft = int((await gql(hcm, OPEN, r=regime, p="2027-M03", k=key()))["data"]["openDraft"]["submissionId"])
    assert _states(await gql(office, TIMELINESS, r=regime, p="2027-M03")) == {
        "UBND_01": "PENDING",
        "UBND_79": "PENDING",
    }
    await gql(hcm, SAVE, s=draft, v=CELLS, k=key())
    assert (await gql(hcm, SUBMIT, s=draft, k=key()))["data"]["submitReport"]["onTime"] is True
    assert _states(await gql(office, TIMELINESS, r=regime, p="2027-M03"))["UBND_79"] == "ON_TIME"

    returned = await gql(office, REVIEW, s=draft, d="RETURN", reason="the total is last month's", k=key())
    reopened = [v for v in returned["data"]["reviewReport"]["versions"] if v["status"] == "DRAFT"]
    answer = await gql(office, TIMELINESS, r=regime, p="2027-M03")
    assert _states(answer)["UBND_79"] == "RETURNED"
    counts = answer["data"]["timeliness"]
    assert (counts["submitted"], counts["onTime"], counts["returned"], counts["missing"]) == (0, 0, 1, 2)

    clock.now = datetime(2027, 3, 20, 0, 0, 1, tzinfo=VN)  # a second after the deadline
    assert _states(await gql(office, TIMELINESS, r=regime, p="2027-M03")) == {
        "UBND_01": "OVERDUE",
        "UBND_79": "RETURNED",
    }
    second = int((await gql(hcm, OPEN, r=regime, p="2027-M03", k=key()))["data"]["openDraft"]["submissionId"])
    assert len(reopened) == 1 and second != draft
    assert (await gql(hcm, SUBMIT, s=second, k=key()))["data"]["submitReport"]["onTime"] is False
    answer = await gql(office, TIMELINESS, r=regime, p="2027-M03")
    row = next(r for r in answer["data"]["timeliness"]["reports"] if r["agencyCode"] == "UBND_79")
    assert row == {
        "agencyCode": "UBND_79",
        "state": "LATE",
        "submissionId": second,
        "cellsRequired": 1,
        "cellsFilled": 1,
    }


async def test_one_question_covers_regimes_periods_and_a_subtree(gql, token_for, clock, pool, regime) -> None:
    other = await create_test_regime(pool, "RATE", allow_early=True, expiry_days=None)
    hcm = await token_for("UBND_79", "reports:submit")
    office = await token_for("VPCP", "reports:review")
    clock.now = datetime(2027, 2, 10, 9, tzinfo=VN)
    for period in ("2027-M01", "2027-M02"):
        opened = await gql(hcm, OPEN, r=regime, p=period, k=key())
        assert "errors" not in opened, opened
        draft = int(opened["data"]["openDraft"]["submissionId"])
        await gql(hcm, SAVE, s=draft, v=CELLS, k=key())
        await gql(hcm, SUBMIT, s=draft, k=key())  # 2027-M01 late (deadline 19 Jan), 2027-M02 on time
    # A draft with nothing in it counts as not submitted and fills no cell.
    await gql(hcm, OPEN, r=other, p="2027-M02", k=key())

    asked = dict(**{"from": "2027-M01"}, to="2027-M03", regimes=[regime, other])
    answer = await gql(office, RATES, **asked)
    assert "errors" not in answer, answer
    rates = answer["data"]["reportingRates"]
    assert rates["total"] == {
        "expected": 12,  # 2 regimes x 3 months x 2 reporters
        "submitted": 2,
        "onTime": 1,
        "late": 1,
        "returned": 0,
        "pending": 7,  # February's and March's unsubmitted reports: their deadlines (19th) are ahead
        "overdue": 3,  # January's that nobody submitted
        "missing": 10,
        "submittedRate": 2 / 12,
        "onTimeRate": 1 / 12,
        "completeness": 2 / 12,
    }
    trend = [(g["regime"], g["period"], g["counts"]["submitted"]) for g in rates["byPeriod"]]
    assert trend == sorted(trend, key=lambda t: (t[0], t[1])) and len(trend) == 6
    assert (regime, "2027-M01", 1) in trend and (other, "2027-M02", 0) in trend
    assert {g["agencyCode"]: g["counts"] for g in rates["byAgency"]} == {
        "UBND_01": {"expected": 6, "submitted": 0},
        "UBND_79": {"expected": 6, "submitted": 2},
    }

    # Who is late: one state filter; a unit's subtree; one agency.
    late = await gql(office, RATES, **asked, states=["OVERDUE", "LATE", "RETURNED"])
    assert {
        (r["regime"], r["period"], r["agencyCode"], r["state"]) for r in late["data"]["reportingRates"]["reports"]
    } == {
        (regime, "2027-M01", "UBND_79", "LATE"),
        (regime, "2027-M01", "UBND_01", "OVERDUE"),
        (other, "2027-M01", "UBND_79", "OVERDUE"),
        (other, "2027-M01", "UBND_01", "OVERDUE"),
    }
    subtree = await gql(office, RATES, **asked, unit="79")
    assert {r["agencyCode"] for r in subtree["data"]["reportingRates"]["reports"]} == {"UBND_79"}
    one = await gql(office, RATES, **asked, agency="UBND_01")
    assert one["data"]["reportingRates"]["total"]["expected"] == 6

    # A caller limited to region 01 sees its own reporter's reports only.
    hanoi_reader = await token_for("UBND_01", "reports:submit region:01")
    mine = await gql(hanoi_reader, RATES, **asked)
    assert {r["agencyCode"] for r in mine["data"]["reportingRates"]["reports"]} == {"UBND_01"}


@pytest.mark.parametrize(
    ("variables", "code", "message"),
    [
        ({"from": "2027-M01", "to": "2027-M03", "regimes": ["NO_SUCH"]}, "NOT_FOUND", "there is no regime NO_SUCH"),
        (
            {"from": "2027-M03", "to": "2027-M01"},
            "BAD_USER_INPUT",
            "the range ends (2027-M01) before it starts (2027-M03)",
        ),
        ({"from": "2027-M01", "to": "2027-M01", "unit": "999"}, "NOT_FOUND", "there is no unit 999 in force today"),
    ],
)
async def test_bad_questions_are_answered_clearly(gql, token_for, variables, code, message) -> None:
    office = await token_for("VPCP", "reports:review")
    answer = await gql(office, RATES, **variables)
    assert [(e["extensions"]["code"], e["message"]) for e in answer["errors"]] == [(code, message)]


async def test_reading_rates_needs_a_reports_scope(gql, token_for) -> None:
    reader = await token_for("BTC", "data:read")
    answer = await gql(reader, RATES, **{"from": "2027-M01"}, to="2027-M01")
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_timeliness_of_a_period_the_regime_does_not_have_is_refused(gql, token_for, regime) -> None:
    office = await token_for("VPCP", "reports:review")
    answer = await gql(office, TIMELINESS, r=regime, p="2027-Q1")
    assert [(e["extensions"]["code"], e["message"]) for e in answer["errors"]] == [
        ("BAD_USER_INPUT", f"regime {regime} is reported per M period, not 2027-Q1")
    ]
