"""Comments on figures (the reporter's) and follow-up marks (the receiving agency's), as reviewers see them."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.reports.conftest import create_test_regime
from tests.reports.test_lifecycle import OPEN, SAVE, SUBMIT, key
from tests.reports.test_period_locks import VN

VALUES = """query($s: Int!) { submission(submissionId: $s) {
  values { indicator comment followUp { followUp note markedBy } }
  history { action before after } } }"""
MARK = """mutation($s: Int!, $i: String!, $f: Boolean!, $n: String!, $k: String!) {
  markFollowUp(submissionId: $s, indicator: $i, followUp: $f, note: $n, idempotencyKey: $k) { submissionId } }"""


pytestmark = pytest.mark.usefixtures("clock_restored")


@pytest.fixture
async def regime(pool) -> str:
    return await create_test_regime(pool, "NOTE", allow_early=True, expiry_days=None)


def _cell(comment: str | None, value: str = "54000") -> list[dict]:
    return [{"indicator": "DOSSIERS_TOTAL", "value": value, "comment": comment}]


async def test_a_comment_is_saved_with_its_figure_and_audited(gql, token_for, clock, regime) -> None:
    hcm = await token_for("UBND_79", "reports:submit")
    office = await token_for("VPCP", "reports:review data:read indicator:DOSSIERS_TOTAL")
    clock.now = datetime(2027, 3, 10, 9, tzinfo=VN)
    draft = int((await gql(hcm, OPEN, r=regime, p="2027-M03", k=key()))["data"]["openDraft"]["submissionId"])
    note = "includes the new one-stop shop's dossiers"
    assert "errors" not in await gql(hcm, SAVE, s=draft, v=_cell(note), k=key())
    assert "errors" not in await gql(hcm, SAVE, s=draft, v=_cell("corrected count"), k=key())
    refused = await gql(hcm, SAVE, s=draft, v=_cell("x" * 2001), k=key())
    assert refused["data"]["saveValues"]["problems"] == [
        {"indicator": "DOSSIERS_TOTAL", "message": "a comment has 1 to 2,000 characters", "severity": "ERROR"}
    ]
    await gql(hcm, SUBMIT, s=draft, k=key())

    shown = (await gql(office, VALUES, s=draft))["data"]["submission"]
    assert shown["values"] == [{"indicator": "DOSSIERS_TOTAL", "comment": "corrected count", "followUp": None}]
    comments = [h for h in shown["history"] if h["action"] == "submission.comments"]
    assert comments == [
        {
            "action": "submission.comments",
            "before": {"79|DOSSIERS_TOTAL|": None},
            "after": {"79|DOSSIERS_TOTAL|": note},
        },
        {
            "action": "submission.comments",
            "before": {"79|DOSSIERS_TOTAL|": note},
            "after": {"79|DOSSIERS_TOTAL|": "corrected count"},
        },
    ]


async def test_the_receiving_agency_marks_a_submitted_figure_for_follow_up(gql, token_for, clock, regime) -> None:
    hcm = await token_for("UBND_79", "reports:submit")
    office = await token_for("VPCP", "reports:review data:read indicator:DOSSIERS_TOTAL")
    clock.now = datetime(2027, 3, 10, 9, tzinfo=VN)
    draft = int((await gql(hcm, OPEN, r=regime, p="2027-M03", k=key()))["data"]["openDraft"]["submissionId"])
    await gql(hcm, SAVE, s=draft, v=_cell(None), k=key())

    early = await gql(office, MARK, s=draft, i="DOSSIERS_TOTAL", f=True, n="check", k=key())
    assert early["errors"][0]["extensions"]["code"] == "CONFLICT"  # a draft is the reporter's
    await gql(hcm, SUBMIT, s=draft, k=key())
    by_reporter = await gql(hcm, MARK, s=draft, i="DOSSIERS_TOTAL", f=True, n="mine", k=key())
    assert by_reporter["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other_reviewer = await token_for("BTC", "reports:review")
    by_other = await gql(other_reviewer, MARK, s=draft, i="DOSSIERS_TOTAL", f=True, n="not ours", k=key())
    assert by_other["errors"][0]["message"] == f"only the receiving agency (VPCP) marks {regime} figures for follow-up"
    missing = await gql(office, MARK, s=draft, i="RETAIL", f=True, n="where?", k=key())
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    blank = await gql(office, MARK, s=draft, i="DOSSIERS_TOTAL", f=True, n="  ", k=key())
    assert blank["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    flagged = await gql(office, MARK, s=draft, i="DOSSIERS_TOTAL", f=True, n="twice last month's total", k=key())
    assert "errors" not in flagged, flagged
    values = (await gql(hcm, VALUES, s=draft))["data"]["submission"]["values"]
    assert values[0]["followUp"]["followUp"] is True and values[0]["followUp"]["note"] == "twice last month's total"
    await gql(office, MARK, s=draft, i="DOSSIERS_TOTAL", f=False, n="confirmed by phone", k=key())
    shown = (await gql(office, VALUES, s=draft))["data"]["submission"]
    assert shown["values"][0]["followUp"]["followUp"] is False
    assert [h["after"] for h in shown["history"] if h["action"] == "submission.follow_up"] == [
        {"79|DOSSIERS_TOTAL|": {"follow_up": True, "note": "twice last month's total"}},
        {"79|DOSSIERS_TOTAL|": {"follow_up": False, "note": "confirmed by phone"}},
    ]
