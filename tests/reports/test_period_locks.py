"""Cut-off windows, locks and lock exceptions, each tested a second either side of its boundary.

The regimes here are the tests' own: monthly, cut-off 15th to 14th, deadline five days after the
cut-off, locking ten days after the deadline. For 2027-M03 that is:

    the window opens   2027-02-15 00:00:00 Vietnam time
    the deadline       2027-03-19 23:59:59.999999
    the report locks   2027-03-29 23:59:59.999999 (still open at that instant, locked after it)
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.reports.conftest import create_test_regime
from tests.reports.test_lifecycle import OPEN, REVIEW, SAVE, SUBMIT, key

VN = timezone(timedelta(hours=7))
PERIOD = "2027-M03"
OPENS = datetime(2027, 2, 15, 0, 0, tzinfo=VN)
DEADLINE = datetime(2027, 3, 19, 23, 59, 59, 999999, tzinfo=VN)
LOCKS = DEADLINE + timedelta(days=10)
SECOND = timedelta(seconds=1)

LOCK_OF = "query($s: Int!) { submission(submissionId: $s) { status onTime lock { locksAt locked exception { reason openedBy expiresAt } } } }"
EXCEPTION = """mutation($r: String!, $a: String!, $p: Period!, $reason: String!, $until: DateTime!, $k: String!) {
  openLockException(regime: $r, agency: $a, period: $p, reason: $reason, until: $until, idempotencyKey: $k) {
    exceptionId agency period reason openedBy expiresAt } }"""
CORRECT = 'mutation($s: Int!, $c: [CellInput!]!, $k: String!) { correctValue(submissionId: $s, cells: $c, reason: "typo", idempotencyKey: $k) { status } }'
LISTED = """query($r: String!) {
  locked: submissions(regime: $r, status: LOCKED) { edges { node { submissionId } } }
  accepted: submissions(regime: $r, status: ACCEPTED) { edges { node { submissionId } } } }"""
CELLS = [{"indicator": "DOSSIERS_TOTAL", "value": "54000"}]


pytestmark = pytest.mark.usefixtures("clock_restored")


@pytest.fixture
async def regime(pool) -> str:
    """A regime of the test's own (tests/reports/conftest.py), locking ten days after the deadline."""
    return await create_test_regime(pool, "LOCK", allow_early=False, expiry_days=10)


def _error(answer: dict) -> tuple[str, str]:
    assert answer.get("data") is None or not any(answer["data"].values()), answer
    error = answer["errors"][0]
    return error["extensions"]["code"], error["message"]


async def _open(gql, token: str, regime: str) -> int:
    answer = await gql(token, OPEN, r=regime, p=PERIOD, k=key())
    assert "errors" not in answer, answer
    return int(answer["data"]["openDraft"]["submissionId"])


async def test_a_draft_opens_when_the_window_does(gql, token_for, clock, regime, pool) -> None:
    hcm = await token_for("UBND_79", "reports:submit")
    clock.now = OPENS - SECOND
    code, message = _error(await gql(hcm, OPEN, r=regime, p=PERIOD, k=key()))
    assert code == "BAD_USER_INPUT"
    assert message == (
        f"the data cut-off window of {PERIOD} opens at 2027-02-15T00:00:00+07:00; regime {regime} takes no early reports"
    )
    clock.now = OPENS
    assert await _open(gql, hcm, regime) > 0

    early = await create_test_regime(pool, "EARLY", allow_early=True, expiry_days=10)
    clock.now = OPENS - timedelta(days=40)
    assert await _open(gql, hcm, early) > 0


async def test_a_report_locks_its_expiry_days_after_the_deadline(gql, token_for, clock, regime, pool) -> None:
    hcm = await token_for("UBND_79", "reports:submit")
    office = await token_for("VPCP", "reports:review")
    clock.now = OPENS
    draft = await _open(gql, hcm, regime)

    clock.now = LOCKS  # the last instant it may change
    assert "errors" not in await gql(hcm, SAVE, s=draft, v=CELLS, k=key())
    lock = (await gql(hcm, LOCK_OF, s=draft))["data"]["submission"]["lock"]
    assert lock == {"locksAt": "2027-03-29T23:59:59.999999+07:00", "locked": False, "exception": None}

    clock.now = LOCKS + SECOND
    code, message = _error(await gql(hcm, SAVE, s=draft, v=CELLS, k=key()))
    assert code == "CONFLICT"
    assert message.startswith(f"the {regime} report of UBND_79 for {PERIOD} locked at 2027-03-29T23:59:59.999999+07:00")
    assert "receiving agency (VPCP) opens a lock exception" in message
    assert _error(await gql(hcm, SUBMIT, s=draft, k=key()))[0] == "CONFLICT"
    shown = (await gql(hcm, LOCK_OF, s=draft))["data"]["submission"]
    assert shown["status"] == "DRAFT" and shown["lock"]["locked"] is True

    # Only the receiving agency opens an exception; it lets the reporter save and submit until it expires.
    until = (clock.now + timedelta(days=2)).isoformat()
    asked = dict(r=regime, a="UBND_79", p=PERIOD, reason="flooding closed the office", until=until)
    assert _error(await gql(hcm, EXCEPTION, **asked, k=key()))[0] == "FORBIDDEN"
    opened = (await gql(office, EXCEPTION, **asked, k=key()))["data"]["openLockException"]
    assert opened["agency"] == "UBND_79" and opened["reason"] == "flooding closed the office"
    clock.now += timedelta(days=2) - SECOND  # a second before it expires
    assert "errors" not in await gql(hcm, SAVE, s=draft, v=CELLS, k=key())
    submitted = (await gql(hcm, SUBMIT, s=draft, k=key()))["data"]["submitReport"]
    assert submitted["status"] == "SUBMITTED" and submitted["onTime"] is False  # a reprieve, not a new deadline
    shown = (await gql(office, LOCK_OF, s=draft))["data"]["submission"]
    assert shown["lock"]["locked"] is False and shown["lock"]["exception"]["reason"] == "flooding closed the office"

    entry = await pool.fetchrow(
        "SELECT actor_agency, after FROM audit_entry WHERE subject = $1",
        f"lock_exception:{opened['exceptionId']}",
    )
    assert entry["actor_agency"] == "VPCP" and "flooding closed the office" in entry["after"]

    # Reviewing is not locked; once accepted and past the exception, the version shows LOCKED and is not corrected.
    office_reviewer = await token_for("VPCP", "reports:review")
    accepted = (await gql(office_reviewer, REVIEW, s=draft, d="ACCEPT", k=key()))["data"]["reviewReport"]
    assert accepted["status"] == "ACCEPTED"  # the exception is still in force
    clock.now += SECOND  # the exception has expired
    assert (await gql(hcm, LOCK_OF, s=draft))["data"]["submission"]["status"] == "LOCKED"
    assert _error(await gql(hcm, CORRECT, s=draft, c=CELLS, k=key()))[0] == "CONFLICT"
    listed = (await gql(hcm, LISTED, r=regime))["data"]
    assert listed["locked"]["edges"] == [{"node": {"submissionId": draft}}] and listed["accepted"]["edges"] == []


async def test_an_exception_expires_and_covers_one_reporter(gql, token_for, clock, regime) -> None:
    hcm = await token_for("UBND_79", "reports:submit")
    hanoi = await token_for("UBND_01", "reports:submit")
    office = await token_for("VPCP", "reports:review")
    clock.now = OPENS
    hcm_draft, hanoi_draft = await _open(gql, hcm, regime), await _open(gql, hanoi, regime)
    clock.now = LOCKS + timedelta(hours=1)
    until = clock.now + timedelta(hours=5)
    opened = await gql(
        office, EXCEPTION, r=regime, a="UBND_79", p=PERIOD, reason="late audit", until=until.isoformat(), k=key()
    )
    assert "errors" not in opened, opened
    assert "errors" not in await gql(hcm, SAVE, s=hcm_draft, v=CELLS, k=key())
    assert _error(await gql(hanoi, SAVE, s=hanoi_draft, v=CELLS, k=key()))[0] == "CONFLICT"  # not its exception
    clock.now = until  # expires_at is the first instant it no longer holds
    assert _error(await gql(hcm, SAVE, s=hcm_draft, v=CELLS, k=key()))[0] == "CONFLICT"


@pytest.mark.parametrize(
    ("agency", "reason", "days", "message"),
    [
        ("UBND_79", " ", 1, "a lock exception needs a reason"),
        ("UBND_79", "why", 91, "until must be after now and at most 90 days away"),
        ("UBND_79", "why", -1, "until must be after now and at most 90 days away"),
        ("UBND_48", "why", 1, "agency UBND_48 does not report under regime {regime}"),
    ],
)
async def test_a_bad_exception_is_refused(gql, token_for, clock, regime, agency, reason, days, message) -> None:
    office = await token_for("VPCP", "reports:review")
    clock.now = LOCKS + SECOND
    until = (clock.now + timedelta(days=days)).isoformat()
    answer = await gql(office, EXCEPTION, r=regime, a=agency, p=PERIOD, reason=reason, until=until, k=key())
    assert _error(answer) == ("BAD_USER_INPUT", message.format(regime=regime))


async def test_instants_are_read_with_an_offset_and_written_in_vietnam_time(gql, token_for, clock, regime) -> None:
    """One clock (issue 19): every DateTime the hub writes is Vietnam time; one without an offset is refused."""
    office = await token_for("VPCP", "reports:review")
    clock.now = LOCKS + SECOND
    asked = dict(r=regime, a="UBND_79", p=PERIOD, reason="power cut")
    code, message = _error(await gql(office, EXCEPTION, **asked, until="2027-04-01T12:00:00", k=key()))
    assert code == "BAD_USER_INPUT" and "DateTime is ISO 8601 with an offset" in message
    opened = await gql(office, EXCEPTION, **asked, until="2027-04-01T05:00:00Z", k=key())
    assert opened["data"]["openLockException"]["expiresAt"] == "2027-04-01T12:00:00+07:00"


async def test_a_regime_names_its_window_and_expiry(gql, token_for) -> None:
    admin = await token_for("VPCP", "admin")
    code = f"EXPIRY_{uuid.uuid4().hex[:8].upper()}"
    regime = {
        "code": code, "nameVi": "Báo cáo tháng", "nameEn": "Monthly report", "legalBasis": "test",
        "issuingAgency": "VPCP", "receivingAgency": "VPCP", "frequency": "M", "deadlineRule": "DAYS_AFTER_CUTOFF",
        "deadlineValue": 5, "reporters": ["UBND_01"], "items": [{"indicator": "RETAIL"}],
        "allowEarly": True, "expiryDays": 30,
    }  # fmt: skip
    upsert = "mutation($i: RegimeInput!, $k: String!) { upsertRegime(input: $i, idempotencyKey: $k) { allowEarly expiryDays } }"
    assert (await gql(admin, upsert, i=regime, k=key()))["data"]["upsertRegime"] == {
        "allowEarly": True,
        "expiryDays": 30,
    }
    regime["expiryDays"] = 400
    assert _error(await gql(admin, upsert, i=regime, k=key()))[0] == "BAD_USER_INPUT"
