"""The lifecycle of a province's monthly report and a ministry's quarterly report, on time and late."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg

from nrhub.resolvers.audit import verify_chain

VN = timezone(timedelta(hours=7))
MONTHLY_CELLS = ["RETAIL", "BUDGET_REV", "BUDGET_EXP", "NEW_ENT", "TRAFFIC_DEATHS", "DOSSIERS_ONLINE", "DOSSIERS_TOTAL"]

OPEN = "mutation($r: String!, $p: Period!, $k: String!) { openDraft(regime: $r, period: $p, idempotencyKey: $k) { submissionId status version deadline } }"
SAVE = "mutation($s: Int!, $v: [CellInput!]!, $k: String!) { saveValues(submissionId: $s, values: $v, idempotencyKey: $k) { problems { indicator message severity } submission { values { indicator value } } } }"
SUBMIT = "mutation($s: Int!, $k: String!) { submitReport(submissionId: $s, idempotencyKey: $k) { status submittedAt onTime deadline } }"
REVIEW = "mutation($s: Int!, $d: ReviewDecision!, $k: String!, $reason: String) { reviewReport(submissionId: $s, decision: $d, idempotencyKey: $k, reason: $reason) { status returnReason versions { version status values { indicator value } } } }"


def key() -> str:
    return str(uuid.uuid4())


async def previous_values(pool, unit_code: str, period: str) -> dict[str, Decimal]:
    rows = await pool.fetch(
        "SELECT c.indicator_code, c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id"
        " WHERE u.code = $1 AND u.valid_to IS NULL AND c.period = $2 AND c.dims = ''",
        unit_code,
        period,
    )
    return {r["indicator_code"]: r["value"] for r in rows}


async def fill_monthly(gql, token: str, pool, unit_code: str, period: str) -> int:
    opened = await gql(token, OPEN, r="BC_KTXH_THANG", p=period, k=key())
    submission = opened["data"]["openDraft"]
    assert submission["status"] == "DRAFT" and submission["version"] == 1
    base = await previous_values(pool, unit_code, "2026-M10")
    # Close to last month's figures, so no jump warning; DOSSIERS_ONLINE below DOSSIERS_TOTAL.
    values = [{"indicator": c, "value": str(base.get(c, Decimal(10)) + 1)} for c in MONTHLY_CELLS]
    saved = await gql(token, SAVE, s=submission["submissionId"], v=values, k=key())
    assert saved["data"]["saveValues"]["problems"] == []
    return int(submission["submissionId"])


async def test_province_monthly_report_on_time_and_late(gql, token_for, clock, pool) -> None:
    hcm = await token_for("UBND_79", "reports:submit")
    hanoi = await token_for("UBND_01", "reports:submit")
    office = await token_for("VPCP", "reports:review audit:read data:read field:growth")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    first = await fill_monthly(gql, hcm, pool, "79", "2026-M11")
    second = await fill_monthly(gql, hanoi, pool, "01", "2026-M11")

    # Cut-off 14 Nov 2026 (a Saturday); two working days after it: Tuesday 17 Nov, end of day.
    clock.now = datetime(2026, 11, 17, 23, 59, tzinfo=VN)
    on_time = (await gql(hcm, SUBMIT, s=first, k=key()))["data"]["submitReport"]
    assert on_time["status"] == "SUBMITTED" and on_time["onTime"] is True
    assert datetime.fromisoformat(on_time["submittedAt"]) == clock.now
    assert datetime.fromisoformat(on_time["deadline"]) == datetime(2026, 11, 17, 23, 59, 59, 999999, tzinfo=VN)
    clock.now = datetime(2026, 11, 18, 0, 1, tzinfo=VN)
    late = (await gql(hanoi, SUBMIT, s=second, k=key()))["data"]["submitReport"]
    assert late["onTime"] is False

    # Submitted reports are immutable.
    changed = await gql(hcm, SAVE, s=first, v=[{"indicator": "RETAIL", "value": "1"}], k=key())
    assert changed["errors"][0]["extensions"]["code"] == "CONFLICT"

    accepted = (await gql(office, REVIEW, s=first, d="ACCEPT", k=key()))["data"]["reviewReport"]
    assert accepted["status"] == "ACCEPTED"
    value = await gql(
        office,
        '{ observation(indicator: "RETAIL", unit: "79", period: "2026-M11") { value status provenance { kind submissionId } } }',
    )
    assert value["data"]["observation"]["provenance"] == {"kind": "SUBMISSION", "submissionId": str(first)}

    timeliness = await gql(
        office,
        '{ timeliness(regime: "BC_KTXH_THANG", period: "2026-M11") { expected submitted onTime late missing onTimeRate reports { agencyCode state } } }',
    )
    t = timeliness["data"]["timeliness"]
    assert (t["expected"], t["submitted"], t["onTime"], t["late"], t["missing"]) == (34, 2, 1, 1, 32)
    states = {r["agencyCode"]: r["state"] for r in t["reports"]}
    assert states["UBND_79"] == "ON_TIME" and states["UBND_01"] == "LATE" and states["UBND_92"] == "OVERDUE"


async def test_correction_after_acceptance_is_reviewed_then_keeps_history(gql, token_for, clock, pool) -> None:
    hue = await token_for("UBND_46", "reports:submit")
    office = await token_for("VPCP", "reports:review data:read field:growth")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    submission = await fill_monthly(gql, hue, pool, "46", "2026-M11")
    await gql(hue, SUBMIT, s=submission, k=key())
    await gql(office, REVIEW, s=submission, d="ACCEPT", k=key())
    value = '{ observation(indicator: "RETAIL", unit: "46", period: "2026-M11") { value } }'
    accepted_value = (await gql(office, value))["data"]["observation"]["value"]
    correct = 'mutation($s: Int!, $k: String!) { correctValue(submissionId: $s, cells: [{indicator: "RETAIL", value: "12345.60"}], reason: "typo in the retail total", idempotencyKey: $k) { submissionId status version correctionReason submittedBy } }'
    correction = (await gql(hue, correct, s=submission, k=key()))["data"]["correctValue"]
    assert (correction["status"], correction["version"]) == ("SUBMITTED", 2)
    assert correction["correctionReason"] == "typo in the retail total"
    # Four eyes: nothing changes for readers until the receiving agency accepts the correction.
    assert (await gql(office, value))["data"]["observation"]["value"] == accepted_value
    reviewed = (await gql(office, REVIEW, s=correction["submissionId"], d="ACCEPT", k=key()))["data"]["reviewReport"]
    assert [(v["version"], v["status"]) for v in reviewed["versions"]] == [(1, "SUPERSEDED"), (2, "ACCEPTED")]
    history = await gql(
        office,
        '{ valueHistory(indicator: "RETAIL", unit: "46", period: "2026-M11") { value reason current recordedBy submissionId } }',
    )
    revisions = history["data"]["valueHistory"]
    assert len(revisions) == 2
    assert revisions[1]["value"] == 12345.6 and revisions[1]["reason"] == "correction: typo in the retail total"
    assert revisions[1]["submissionId"] == correction["submissionId"]
    assert [r["current"] for r in revisions] == [False, True]
    # Only the corrected cell became a new revision: the others are still the first version's.
    unchanged = await pool.fetchval(
        "SELECT count(*) FROM observation_revision r JOIN admin_unit u ON u.id = r.unit_id"
        " WHERE u.code = '46' AND r.period = '2026-M11' AND r.indicator_code <> 'RETAIL' AND r.submission_id = $1",
        correction["submissionId"],
    )
    assert unchanged == 0
    history = await gql(
        hue,
        "query($s: Int!) { submission(submissionId: $s) { history { action actorAgency } } }",
        s=correction["submissionId"],
    )
    actions = [h["action"] for h in history["data"]["submission"]["history"]]
    assert actions == ["submission.correct", "submission.values", "submission.submit", "submission.accept"]


async def test_ministry_quarterly_report_late_then_returned(gql, token_for, clock, pool) -> None:
    ministry = await token_for("BTC", "reports:submit")
    office = await token_for("VPCP", "reports:review")
    clock.now = datetime(2026, 9, 1, 9, 0, tzinfo=VN)
    opened = (await gql(ministry, OPEN, r="BC_BO_QUY", p="2026-Q3", k=key()))["data"]["openDraft"]
    # Cut-off 14 Sep; five days after: 19 Sep.
    assert datetime.fromisoformat(opened["deadline"]) == datetime(2026, 9, 19, 23, 59, 59, 999999, tzinfo=VN)
    cells = [
        {"indicator": c, "value": v}
        for c, v in (
            ("GDP_CUR", "3100000.5"),
            ("INV_TOTAL", "1000000"),
            ("UNEMPLOYED", "1100000"),
            ("LABOUR_FORCE", "53000000"),
        )
    ]
    await gql(ministry, SAVE, s=opened["submissionId"], v=cells, k=key())
    clock.now = datetime(2026, 9, 20, 8, 0, tzinfo=VN)
    assert (await gql(ministry, SUBMIT, s=opened["submissionId"], k=key()))["data"]["submitReport"]["onTime"] is False
    missing_reason = await gql(office, REVIEW, s=opened["submissionId"], d="RETURN", k=key())
    assert missing_reason["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    returned = (
        await gql(
            office,
            REVIEW,
            s=opened["submissionId"],
            d="RETURN",
            k=key(),
            reason="GDP figure disagrees with the statistics office",
        )
    )["data"]["reviewReport"]
    assert returned["status"] == "RETURNED"
    assert [(v["version"], v["status"]) for v in returned["versions"]] == [(1, "RETURNED"), (2, "DRAFT")]
    assert returned["versions"][1]["values"] == returned["versions"][0]["values"]


async def test_acting_for_another_province_or_with_a_read_only_token_is_forbidden(gql, token_for, clock, pool) -> None:
    hcm = await token_for("UBND_79", "reports:submit")
    danang = await token_for("UBND_48", "reports:submit")
    reader = await token_for("BTC", "data:read field:growth")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    opened = (await gql(danang, OPEN, r="BC_KTXH_THANG", p="2026-M12", k=key()))["data"]["openDraft"]
    audit_before = await pool.fetchval("SELECT count(*) FROM audit_entry")
    values_before = await pool.fetchval("SELECT count(*) FROM submission_value")
    attempts = [
        await gql(hcm, SAVE, s=opened["submissionId"], v=[{"indicator": "RETAIL", "value": "1"}], k=key()),
        await gql(hcm, SUBMIT, s=opened["submissionId"], k=key()),
        await gql(reader, OPEN, r="BC_KTXH_THANG", p="2026-M12", k=key()),
        await gql(reader, SAVE, s=opened["submissionId"], v=[{"indicator": "RETAIL", "value": "1"}], k=key()),
        await gql(reader, REVIEW, s=opened["submissionId"], d="ACCEPT", k=key()),
    ]
    assert [a["errors"][0]["extensions"]["code"] for a in attempts] == ["FORBIDDEN"] * 5
    assert await pool.fetchval("SELECT count(*) FROM audit_entry") == audit_before
    assert await pool.fetchval("SELECT count(*) FROM submission_value") == values_before


async def test_idempotency_keys_replay_or_conflict(gql, token_for, clock) -> None:
    province = await token_for("UBND_56", "reports:submit")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    k = key()
    first = await gql(province, OPEN, r="BC_KTXH_THANG", p="2026-M11", k=k)
    again = await gql(province, OPEN, r="BC_KTXH_THANG", p="2026-M11", k=k)
    assert first["data"] == again["data"]
    other = await gql(province, OPEN, r="BC_KTXH_THANG", p="2026-M12", k=k)
    assert other["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_concurrent_submits_one_wins(gql, token_for, clock, pool) -> None:
    province = await token_for("UBND_52", "reports:submit")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    submission = await fill_monthly(gql, province, pool, "52", "2026-M11")
    results = await asyncio.gather(*(gql(province, SUBMIT, s=submission, k=key()) for _ in range(5)))
    outcomes = sorted(
        "ok" if r.get("data", {}).get("submitReport") else r["errors"][0]["extensions"]["code"] for r in results
    )
    assert outcomes == ["CONFLICT"] * 4 + ["ok"]


async def test_acceptance_notifies_with_keys_only(gql, token_for, clock, pool, database_url) -> None:
    province = await token_for("UBND_66", "reports:submit")
    office = await token_for("VPCP", "reports:review")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    submission = await fill_monthly(gql, province, pool, "66", "2026-M11")
    await gql(province, SUBMIT, s=submission, k=key())
    events: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    await listener.add_listener("hub_events", lambda *args: events.put_nowait(args[3]))
    try:
        await gql(office, REVIEW, s=submission, d="ACCEPT", k=key())
        payload = await asyncio.wait_for(events.get(), 5)
    finally:
        await listener.close()
    assert f'"submission":{submission}' in payload and '"type":"submission.accepted"' in payload
    assert "value" not in payload


async def test_the_chain_verifies_after_all_of_it(pool) -> None:
    async with pool.acquire() as conn:
        result = await verify_chain(conn)
    assert result.problem is None and result.entries > 10
    assert datetime.now(UTC)  # the chain covers demo loads and the workflow above


async def test_bulk_csv_and_sdmx_csv_fill_a_draft_all_or_nothing(gql, token_for, clock, report_hub, pool) -> None:
    import httpx

    province = await token_for("UBND_24", "reports:submit")
    clock.now = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    opened = (await gql(province, OPEN, r="BC_KTXH_THANG", p="2026-M11", k=key()))["data"]["openDraft"]
    url = f"{report_hub}/reports/{opened['submissionId']}/values"
    headers = {"Authorization": f"Bearer {province}", "Content-Type": "text/csv"}
    bad = "indicator,disaggregation,value\nRETAIL,,12.5\nNOPE_X,,1\nBUDGET_REV,,abc\n"
    async with httpx.AsyncClient() as http:
        refused = await http.put(url, content=bad, headers=headers | {"Idempotency-Key": key()})
        assert refused.status_code == 422
        assert [e["row"] for e in refused.json()["errors"]] == [3, 4]  # NOPE_X is outside the form, abc no figure
        good = "indicator,disaggregation,value\n" + "".join(f"{c},,{i + 1}.5\n" for i, c in enumerate(MONTHLY_CELLS))
        saved = await http.put(url, content=good, headers=headers | {"Idempotency-Key": key()})
        assert saved.status_code == 200 and saved.json()["saved"] == 7
        form_error = await http.put(
            url, content="indicator,disaggregation,value\nGDP_CUR,,1\n", headers=headers | {"Idempotency-Key": key()}
        )
        assert form_error.status_code == 422 and form_error.json()["errors"][0]["row"] == 2
        sdmx = "DATAFLOW,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE\nVN:BC_KTXH_THANG(1.0),RETAIL,24,2026-M11,99.25\n"
        replaced = await http.put(
            url,
            content=sdmx,
            headers=headers | {"Content-Type": "application/vnd.sdmx.data+csv", "Idempotency-Key": key()},
        )
        assert replaced.status_code == 200, replaced.text
    values = await pool.fetch(
        "SELECT indicator_code, value FROM submission_value WHERE submission_id = $1", opened["submissionId"]
    )
    stored = {r["indicator_code"]: r["value"] for r in values}
    assert stored["RETAIL"] == Decimal("99.25") and stored["BUDGET_REV"] == Decimal("2.5") and len(stored) == 7
