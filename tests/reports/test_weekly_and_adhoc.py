"""Weekly periods (ISO 8601 weeks) and ad-hoc (đột xuất) regimes, each boundary judged a second either side.

The weekly regime here counts its deadline two days from the week's Sunday: for 2027-W10 (Monday
8 to Sunday 14 March 2027) drafts open at 2027-03-08 00:00 and the deadline is 2027-03-16
23:59:59.999999, Vietnam time. The ad-hoc regime asks for 2027-M04 by 2027-05-05 17:00 Vietnam time
and locks two days later. Note on week 53: an ISO year has one when its 28 December lies in week 53,
so 2020 and 2026 have one (1 January 2026 is a Thursday) and 2025 and 2027 do not.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import httpx
import pytest

from nrhub.auth.clients import create_client
from nrhub.resolvers.deadlines import Rule, schedule
from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.periods import Period, containing, period_range
from nrhub.resolvers.regime_admin import ItemSpec, RegimeSpec, upsert_regime
from nrhub.resolvers.reminders import record_reminders
from tests.conftest import serving_hub
from tests.reports.conftest import create_test_regime
from tests.reports.test_lifecycle import OPEN, REVIEW, SAVE, SUBMIT, key
from tests.reports.test_regime_import_rules import OPERATOR
from tests.reports.test_reporting_rates import RATES, TIMELINESS
from tests.reports.webhook_receiver import add_webhook, submitted

VN = timezone(timedelta(hours=7))
SECOND = timedelta(seconds=1)
WEEK = "2027-W10"
WEEK_OPENS = datetime(2027, 3, 8, 0, 0, tzinfo=VN)
WEEK_DEADLINE = datetime(2027, 3, 16, 23, 59, 59, 999999, tzinfo=VN)
ADHOC_PERIOD = "2027-M04"
ADHOC_DEADLINE = datetime(2027, 5, 5, 17, 0, tzinfo=VN)
ADHOC_LOCKS = ADHOC_DEADLINE + timedelta(days=2)
UPSERT = """mutation($i: RegimeInput!, $k: String!) { upsertRegime(input: $i, idempotencyKey: $k) {
  code frequency adhoc period deadline deadlineRule deadlineValue expiryDays } }"""

pytestmark = pytest.mark.usefixtures("clock_restored")


# --- Weeks as periods ---------------------------------------------------------------------------------------------


def test_weeks_parse_print_and_span_monday_to_sunday() -> None:
    first = Period.parse("2026-W01")
    assert (str(first), first.frequency, first.start, first.end) == (
        "2026-W01",
        "W",
        date(2025, 12, 29),
        date(2026, 1, 4),
    )
    assert (Period.parse("2020-W53").start, Period.parse("2020-W53").end) == (date(2020, 12, 28), date(2021, 1, 3))
    assert str(Period.parse("2026-W53").next()) == "2027-W01"  # 2026 has 53 ISO weeks
    assert str(Period.parse("2020-W53").next()) == "2021-W01"
    assert str(first.previous()) == "2025-W52"
    assert Period.week_of(date(2027, 1, 3)) == Period.parse("2026-W53")
    for text, message in [
        ("2025-W53", "2025-W53 is not a week: 2025 has 52 ISO weeks"),
        ("2027-W53", "2027-W53 is not a week: 2027 has 52 ISO weeks"),
        ("2026-W00", "'2026-W00' is not a period: write 2026, 2026-S1, 2026-Q3, 2026-M10 or 2026-W05 (SDMX notation)"),
        ("2026-W54", "'2026-W54' is not a period: write 2026, 2026-S1, 2026-Q3, 2026-M10 or 2026-W05 (SDMX notation)"),
        ("2026-W5", "'2026-W5' is not a period: write 2026, 2026-S1, 2026-Q3, 2026-M10 or 2026-W05 (SDMX notation)"),
    ]:
        with pytest.raises(BadUserInput) as refused:
            Period.parse(text)
        assert refused.value.message == message


def test_weeks_order_by_time_and_range_across_years() -> None:
    texts = ["2026-M01", "2026-W02", "2025-W52", "2026", "2026-W01", "2025-M12"]
    assert [str(p) for p in sorted(Period.parse(t) for t in texts)] == [
        "2025-M12",  # starts 1 December 2025
        "2025-W52",  # 22 December
        "2026-W01",  # 29 December
        "2026-M01",  # 1 January 2026, shorter than the year that starts with it
        "2026",
        "2026-W02",  # 5 January
    ]
    weeks = period_range(Period.parse("2026-W52"), Period.parse("2027-W02"))
    assert [str(p) for p in weeks] == ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]
    with pytest.raises(BadUserInput, match="the range ends"):
        period_range(Period.parse("2027-W02"), Period.parse("2026-W52"))
    with pytest.raises(BadUserInput, match="one frequency"):
        period_range(Period.parse("2026-W05"), Period.parse("2026-M02"))


def test_weeks_and_months_never_combine() -> None:
    with pytest.raises(BadUserInput, match="a week may cross a month's end"):
        Period.parse("2026-M02").subperiods("W")
    with pytest.raises(BadUserInput, match="a week may cross a month's end"):
        Period.parse("2026-W05").subperiods("M")
    with pytest.raises(BadUserInput, match="a week may cross a month's end"):
        containing(Period.parse("2026-W05"), "M")
    with pytest.raises(BadUserInput, match="weeks are not made of months"):
        _ = Period.parse("2026-W05").months
    assert Period.parse("2026-W05").subperiods("W") == [Period.parse("2026-W05")]


async def test_the_database_reads_weeks_as_python_does(pool) -> None:
    texts = ["2026-W01", "2020-W53", "2026-W53", "2027-W10", "2026-M10", "2026-Q3", "2026-S1", "2026"]
    rows = await pool.fetch(
        "SELECT p, is_period(p) AS valid, period_frequency(p) AS frequency, period_start(p) AS start,"
        " period_end(p) AS end FROM unnest($1::text[]) AS p",
        texts,
    )
    assert [(r["valid"], r["frequency"], r["start"], r["end"]) for r in rows] == [
        (True, Period.parse(t).frequency, Period.parse(t).start, Period.parse(t).end) for t in texts
    ]
    refused = ["2025-W53", "2027-W53", "2026-W00", "2026-W54", "2026-W5", "0000-W01"]
    assert await pool.fetchval("SELECT bool_or(is_period(p)) FROM unnest($1::text[]) AS p", refused) is False
    # The aggregates' parts: a week in weeks is itself; weeks and months give none (no value).
    assert await pool.fetchval("SELECT subperiods('2026-W05', 'W')") == ["2026-W05"]
    assert await pool.fetchval("SELECT subperiods('2026-W05', 'M') IS NULL AND subperiods('2026-M02', 'W') IS NULL")


# --- Schedules ----------------------------------------------------------------------------------------------------


def test_a_week_is_its_own_window_and_its_deadline_counts_from_its_sunday() -> None:
    week = Period.parse(WEEK)
    two_days = schedule(Rule(15, 14, "DAYS_AFTER_CUTOFF", 2), week, set())
    assert (two_days.window_start, two_days.window_end) == (date(2027, 3, 8), date(2027, 3, 14))
    assert (two_days.opens_at, two_days.deadline) == (WEEK_OPENS, WEEK_DEADLINE)
    same_day = schedule(Rule(15, 14, "DAYS_AFTER_CUTOFF", 0), week, set())
    assert same_day.deadline == datetime(2027, 3, 14, 23, 59, 59, 999999, tzinfo=VN)
    # Two working days from Sunday: Monday and Tuesday; a holiday on the Monday moves it to Wednesday.
    working = Rule(15, 14, "WORKING_DAYS_AFTER_CUTOFF", 2)
    assert schedule(working, week, set()).deadline.date() == date(2027, 3, 16)
    assert schedule(working, week, {date(2027, 3, 15)}).deadline.date() == date(2027, 3, 17)
    with pytest.raises(BadUserInput, match="DAY_OF_NEXT_MONTH cannot give the deadline of 2027-W10"):
        schedule(Rule(15, 14, "DAY_OF_NEXT_MONTH", 5), week, set())


def test_an_adhoc_deadline_is_the_instant_given_whatever_the_holidays() -> None:
    rule = Rule(15, 14, "ONE_OFF", 0, ADHOC_PERIOD, ADHOC_DEADLINE)
    planned = schedule(rule, Period.parse(ADHOC_PERIOD), {date(2027, 5, 5), date(2027, 5, 4)})
    assert (planned.deadline, planned.opens_at) == (ADHOC_DEADLINE, None)  # None: drafts open at once
    with pytest.raises(BadUserInput, match="for 2027-M04 only, not 2027-M05"):
        schedule(rule, Period.parse("2027-M05"), set())


# --- A weekly regime through GraphQL ------------------------------------------------------------------------------


async def weekly_indicator(conn: asyncpg.Connection | asyncpg.Pool) -> str:
    """A weekly indicator of the test's own (the demo has none): cases counted per ISO week, summed."""
    code = f"WK_{uuid.uuid4().hex[:8].upper()}"
    await conn.execute(
        "INSERT INTO indicator (code, name_vi, name_en, field, unit_of_measure, value_type, decimals, periodicity,"
        " aggregation, responsible_agency) VALUES ($1, 'Số ca mắc trong tuần', 'Cases in the week', 'social',"
        " 'cases', 'INTEGER', 0, 'W', 'SUM', 'VPCP')",
        code,
    )
    return code


def _regime_input(code: str, **fields: object) -> dict:
    return {
        "code": code,
        "nameVi": "Báo cáo thử",
        "nameEn": "Test report",
        "legalBasis": "test",
        "issuingAgency": "VPCP",
        "receivingAgency": "VPCP",
        "reporters": ["UBND_79", "UBND_01"],
        **fields,
    }


def _refusal(answer: dict) -> tuple[str, str]:
    assert answer.get("data") is None or not any(answer["data"].values()), answer
    return answer["errors"][0]["extensions"]["code"], answer["errors"][0]["message"]


def _ok(answer: dict) -> dict:
    assert "errors" not in answer, answer
    return answer["data"]


async def test_a_weekly_report_opens_on_monday_and_is_late_a_second_after_its_deadline(
    gql, token_for, clock, pool
) -> None:
    admin = await token_for("VPCP", "admin")
    hcm = await token_for("UBND_79", "reports:submit")
    hanoi = await token_for("UBND_01", "reports:submit")
    office = await token_for("VPCP", "reports:review")
    indicator = await weekly_indicator(pool)
    code = f"WEEK_{uuid.uuid4().hex[:8].upper()}"
    weekly = _regime_input(
        code, frequency="W", deadlineRule="DAYS_AFTER_CUTOFF", deadlineValue=2, items=[{"indicator": indicator}]
    )
    created = _ok(await gql(admin, UPSERT, i=weekly, k=key()))["upsertRegime"]
    assert created == {
        "code": code,
        "frequency": "W",
        "adhoc": False,
        "period": None,
        "deadline": None,
        "deadlineRule": "DAYS_AFTER_CUTOFF",
        "deadlineValue": 2,
        "expiryDays": None,
    }
    refused = await gql(admin, UPSERT, i=weekly | {"deadlineRule": "DAY_OF_NEXT_MONTH", "deadlineValue": 5}, k=key())
    assert _refusal(refused) == (
        "BAD_USER_INPUT",
        f"regime {code} is weekly: DAY_OF_NEXT_MONTH has no meaning for a week; count DAYS_AFTER_CUTOFF or"
        " WORKING_DAYS_AFTER_CUTOFF from the week's Sunday",
    )
    refused = await gql(admin, UPSERT, i=weekly | {"items": [{"indicator": "DOSSIERS_TOTAL"}]}, k=key())
    assert _refusal(refused) == (
        "BAD_USER_INPUT",
        f"regime {code} is weekly (W), but DOSSIERS_TOTAL is monthly (M): its form may hold only weekly indicators",
    )

    clock.now = WEEK_OPENS - SECOND
    assert _refusal(await gql(hcm, OPEN, r=code, p=WEEK, k=key())) == (
        "BAD_USER_INPUT",
        f"the data cut-off window of {WEEK} opens at 2027-03-08T00:00:00+07:00; regime {code} takes no early reports",
    )
    clock.now = WEEK_OPENS
    opened = _ok(await gql(hcm, OPEN, r=code, p=WEEK, k=key()))["openDraft"]
    assert opened["deadline"] == "2027-03-16T23:59:59.999999+07:00"
    assert _refusal(await gql(hcm, OPEN, r=code, p="2027-M03", k=key())) == (
        "BAD_USER_INPUT",
        f"regime {code} is reported per W period, not 2027-M03",
    )
    monthly = await create_test_regime(pool, "MONTH", allow_early=True, expiry_days=None)
    assert _refusal(await gql(hcm, OPEN, r=monthly, p=WEEK, k=key())) == (
        "BAD_USER_INPUT",
        f"regime {monthly} is reported per M period, not {WEEK}",
    )

    cells = [{"indicator": indicator, "value": "120"}]
    mine = int(opened["submissionId"])
    assert not _ok(await gql(hcm, SAVE, s=mine, v=cells, k=key()))["saveValues"]["problems"]
    clock.now = WEEK_DEADLINE - SECOND
    assert _ok(await gql(hcm, SUBMIT, s=mine, k=key()))["submitReport"]["onTime"] is True
    theirs = int(_ok(await gql(hanoi, OPEN, r=code, p=WEEK, k=key()))["openDraft"]["submissionId"])
    await gql(hanoi, SAVE, s=theirs, v=[{"indicator": indicator, "value": "80"}], k=key())
    clock.now = WEEK_DEADLINE + SECOND
    assert _ok(await gql(hanoi, SUBMIT, s=theirs, k=key()))["submitReport"]["onTime"] is False

    states = _ok(await gql(office, TIMELINESS, r=code, p=WEEK))["timeliness"]
    assert {r["agencyCode"]: r["state"] for r in states["reports"]} == {"UBND_79": "ON_TIME", "UBND_01": "LATE"}
    # The weeks lying wholly in March 2027: W09 (1-7 March) to W12 (22-28 March); W13 ends in April.
    rates = _ok(await gql(office, RATES, **{"from": "2027-M03"}, to="2027-M03", regimes=[code]))["reportingRates"]
    assert [g["period"] for g in rates["byPeriod"]] == ["2027-W09", "2027-W10", "2027-W11", "2027-W12"]
    assert (rates["total"]["expected"], rates["total"]["onTime"], rates["total"]["late"]) == (8, 1, 1)

    # Accepted, the figure is a weekly observation: a series over weeks shows it, a month has no value from weeks.
    assert _ok(await gql(office, REVIEW, s=mine, d="ACCEPT", k=key()))["reviewReport"]["status"] == "ACCEPTED"
    reader = await token_for("VPCP", f"data:read indicator:{indicator}")
    series = _ok(
        await gql(
            reader,
            'query($i: String!) { series(indicator: $i, from: "2027-W09", to: "2027-W11", units: ["79"]) {'
            " periods rows } }",
            i=indicator,
        )
    )["series"]
    assert series["periods"] == ["2027-W09", "2027-W10", "2027-W11"]
    assert [row["values"] for row in series["rows"]] == [[None, 120, None]]
    aggregate = 'query($i: String!, $p: Period!) { aggregate(indicator: $i, unit: "79", period: $p) { value } }'
    assert _ok(await gql(reader, aggregate, i=indicator, p=WEEK))["aggregate"]["value"] == 120
    assert (_ok(await gql(reader, aggregate, i=indicator, p="2027-M03"))["aggregate"] or {}).get("value") is None
    wrong = await gql(
        reader,
        'query($i: String!) { series(indicator: $i, from: "2027-M01", to: "2027-M03") { periods } }',
        i=indicator,
    )
    assert _refusal(wrong) == (
        "BAD_USER_INPUT",
        f"{indicator} is reported with frequency W; ask for periods of that frequency",
    )


# --- An ad-hoc regime through GraphQL -----------------------------------------------------------------------------


async def test_an_adhoc_request_takes_its_one_period_until_its_one_off_deadline(gql, token_for, clock) -> None:
    admin = await token_for("VPCP", "admin")
    hcm = await token_for("UBND_79", "reports:submit")
    hanoi = await token_for("UBND_01", "reports:submit")
    danang = await token_for("UBND_48", "reports:submit")
    office = await token_for("VPCP", "reports:review")
    code = f"ADHOC_{uuid.uuid4().hex[:8].upper()}"
    request = _regime_input(
        code,
        frequency="ADHOC",
        period=ADHOC_PERIOD,
        deadline="2027-05-05T17:00:00+07:00",
        expiryDays=2,
        reporters=["UBND_79", "UBND_01", "UBND_48"],
        items=[{"indicator": "DOSSIERS_TOTAL"}],
    )
    for wrong, code_and_message in [
        (
            {"deadline": None},
            (
                "BAD_USER_INPUT",
                f"regime {code}: an ad-hoc regime needs both the period it asks for (e.g. 2026-M10) and its deadline,"
                " an instant with its offset (e.g. 2026-11-05T17:00:00+07:00)",
            ),
        ),
        (
            {"frequency": "Q"},
            (
                "BAD_USER_INPUT",
                f"regime {code} is quarterly (Q), but it asks for 2027-M04, a"
                " monthly period: write frequency ADHOC (or M)",
            ),
        ),
        (
            {"deadlineRule": "DAYS_AFTER_CUTOFF", "deadlineValue": 5},
            (
                "BAD_USER_INPUT",
                f"regime {code} is ad-hoc: its deadline is the one-off deadline given; leave the deadline rule out",
            ),
        ),
        (
            {"period": "2027-W14"},
            (
                "BAD_USER_INPUT",
                f"regime {code} is weekly (W), but DOSSIERS_TOTAL is monthly (M): its form may hold only weekly indicators",
            ),
        ),
    ]:
        assert _refusal(await gql(admin, UPSERT, i=request | wrong, k=key())) == code_and_message
    no_offset = _refusal(await gql(admin, UPSERT, i=request | {"deadline": "2027-05-05T17:00:00"}, k=key()))
    assert no_offset[0] == "BAD_USER_INPUT" and "has no offset" in no_offset[1]

    created = _ok(await gql(admin, UPSERT, i=request, k=key()))["upsertRegime"]
    assert created == {
        "code": code,
        "frequency": "M",  # the frequency of the period it asks for
        "adhoc": True,
        "period": ADHOC_PERIOD,
        "deadline": "2027-05-05T17:00:00+07:00",
        "deadlineRule": "ONE_OFF",
        "deadlineValue": 0,
        "expiryDays": 2,
    }
    # Written back as read, it is the same regime.
    read_back = request | {"frequency": "M", "deadlineRule": "ONE_OFF", "deadlineValue": 0}
    assert _ok(await gql(admin, UPSERT, i=read_back, k=key()))["upsertRegime"] == created

    # Drafts open at once (a monthly regime's window for 2027-M04 opens 15 March), for that period only.
    clock.now = datetime(2027, 3, 1, 9, tzinfo=VN)
    assert _refusal(await gql(hcm, OPEN, r=code, p="2027-M05", k=key())) == (
        "BAD_USER_INPUT",
        f"regime {code} is an ad-hoc request for 2027-M04 only, not 2027-M05",
    )
    opened = _ok(await gql(hcm, OPEN, r=code, p=ADHOC_PERIOD, k=key()))["openDraft"]
    assert opened["deadline"] == "2027-05-05T17:00:00+07:00"
    mine = int(opened["submissionId"])
    await gql(hcm, SAVE, s=mine, v=[{"indicator": "DOSSIERS_TOTAL", "value": "54000"}], k=key())
    clock.now = ADHOC_DEADLINE - SECOND
    assert _ok(await gql(hcm, SUBMIT, s=mine, k=key()))["submitReport"]["onTime"] is True
    theirs = int(_ok(await gql(hanoi, OPEN, r=code, p=ADHOC_PERIOD, k=key()))["openDraft"]["submissionId"])
    await gql(hanoi, SAVE, s=theirs, v=[{"indicator": "DOSSIERS_TOTAL", "value": "61000"}], k=key())
    clock.now = ADHOC_DEADLINE + SECOND
    assert _ok(await gql(hanoi, SUBMIT, s=theirs, k=key()))["submitReport"]["onTime"] is False

    states = _ok(await gql(office, TIMELINESS, r=code, p=ADHOC_PERIOD))["timeliness"]
    assert {r["agencyCode"]: r["state"] for r in states["reports"]} == {
        "UBND_79": "ON_TIME",
        "UBND_01": "LATE",
        "UBND_48": "OVERDUE",
    }
    # Exactly one report per reporter, for its one period, over any range that holds it.
    rates = _ok(await gql(office, RATES, **{"from": "2027"}, to="2027", regimes=[code]))["reportingRates"]
    assert [g["period"] for g in rates["byPeriod"]] == [ADHOC_PERIOD]
    assert (rates["total"]["expected"], rates["total"]["onTime"], rates["total"]["late"]) == (3, 1, 1)
    later = _ok(await gql(office, RATES, **{"from": "2027-M05"}, to="2027-M12", regimes=[code]))["reportingRates"]
    assert later["total"]["expected"] == 0

    # Expiry days count from the one-off deadline: open at that instant, locked a second later.
    clock.now = ADHOC_LOCKS + SECOND
    code_, message = _refusal(await gql(danang, OPEN, r=code, p=ADHOC_PERIOD, k=key()))
    assert code_ == "CONFLICT" and "locked at 2027-05-07T17:00:00+07:00" in message
    clock.now = ADHOC_LOCKS
    assert _ok(await gql(danang, OPEN, r=code, p=ADHOC_PERIOD, k=key()))["openDraft"]["status"] == "DRAFT"


# --- Reminders, the documented example and the import, on a private copy of the demo --------------------------------


async def _upsert(conn: asyncpg.Connection, spec: RegimeSpec) -> None:
    async with conn.transaction():
        await upsert_regime(conn, OPERATOR, spec, now=datetime.now(UTC))


def _spec(
    code: str,
    frequency: str,
    reporters: list[str],
    items: list[str],
    rule: str | None = None,
    days: int | None = None,
    **more: object,
) -> RegimeSpec:
    return RegimeSpec(
        code, "Báo cáo thử", "Test report", "test", "VPCP", "VPCP", frequency, rule, days, reporters,
        [ItemSpec(i) for i in items], **more,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_reminders_come_for_weekly_and_adhoc_regimes_from_their_deadlines(clone_demo) -> None:
    conn = await asyncpg.connect(await clone_demo())
    try:
        indicator = await weekly_indicator(conn)
        weekly = _spec("NHAC_TUAN", "W", ["UBND_79"], [indicator], "DAYS_AFTER_CUTOFF", 1)
        # Any period, however far its deadline is from it: here last year's, due on a November afternoon.
        adhoc = _spec(
            "NHAC_DOT_XUAT", "ADHOC", ["UBND_79", "UBND_01"], ["LAB_PROD_GR"],
            period="2025", deadline=datetime(2026, 11, 20, 17, 0, tzinfo=VN),
        )  # fmt: skip
        await _upsert(conn, weekly)
        await _upsert(conn, adhoc)
        await submitted(conn, "NHAC_DOT_XUAT", "UBND_01", "2025")  # it owes nothing and is not reminded
        hook = await add_webhook(conn, "UBND_79", "https://bao-cao.example.gov.vn/hooks/nrhub", "s" * 32)
        lead, lookback = timedelta(days=3), timedelta(days=7)

        # Friday morning: the request is due this afternoon; 2026-W46 was due last Monday night.
        await record_reminders(conn, datetime(2026, 11, 20, 8, tzinfo=VN), lead, lookback)
        # Saturday: the request is overdue; 2026-W47 (16-22 November) is due Monday night.
        await record_reminders(conn, datetime(2026, 11, 21, 9, tzinfo=VN), lead, lookback)
        rows = await conn.fetch(
            "SELECT regime_code, period, agency_code, kind, deadline FROM reminder"
            " WHERE regime_code IN ('NHAC_TUAN', 'NHAC_DOT_XUAT') ORDER BY id"
        )
        assert [tuple(r) for r in rows] == [
            ("NHAC_DOT_XUAT", "2025", "UBND_79", "BEFORE_DEADLINE", datetime(2026, 11, 20, 17, tzinfo=VN)),
            ("NHAC_TUAN", "2026-W46", "UBND_79", "OVERDUE", datetime(2026, 11, 16, 23, 59, 59, 999999, tzinfo=VN)),
            ("NHAC_DOT_XUAT", "2025", "UBND_79", "OVERDUE", datetime(2026, 11, 20, 17, tzinfo=VN)),
            (
                "NHAC_TUAN",
                "2026-W47",
                "UBND_79",
                "BEFORE_DEADLINE",
                datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=VN),
            ),
        ]
        queued = await conn.fetch(
            "SELECT payload->>'regime' AS regime, payload->>'period' AS period, payload->>'deadline' AS deadline"
            " FROM webhook_delivery WHERE webhook_id = $1 AND payload->>'regime' IN ('NHAC_TUAN', 'NHAC_DOT_XUAT')"
            " ORDER BY reminder_id",
            hook,
        )
        assert [tuple(q) for q in queued] == [
            ("NHAC_DOT_XUAT", "2025", "2026-11-20T17:00:00+07:00"),
            ("NHAC_TUAN", "2026-W46", "2026-11-16T23:59:59.999999+07:00"),
            ("NHAC_DOT_XUAT", "2025", "2026-11-20T17:00:00+07:00"),
            ("NHAC_TUAN", "2026-W47", "2026-11-23T23:59:59.999999+07:00"),
        ]
    finally:
        await conn.close()


async def test_the_documented_adhoc_request_runs_verbatim(clone_demo) -> None:
    """docs/reports.md's upsertRegime block is marked not-run (the docs' reader is no admin): run here."""
    from tests.docs.test_examples import GRAPHQL

    (example,) = [e for e in GRAPHQL if e.page.name == "reports.md" and "upsertRegime" in e.text]
    url = await clone_demo()
    conn = await asyncpg.connect(url)
    try:
        client, secret = await create_client(conn, agency="VPCP", scopes=["admin"])
    finally:
        await conn.close()
    async with serving_hub(url, clock=lambda: datetime(2026, 11, 1, tzinfo=UTC)) as hub, httpx.AsyncClient() as http:
        token = await http.post(
            f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
        )
        answer = (
            await http.post(
                f"{hub}/graphql",
                json={"query": example.text},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
        ).json()
    assert "errors" not in answer, answer
    assert answer["data"]["upsertRegime"] == {
        "code": "BC_THIET_HAI_BAO_2026_10",
        "frequency": "M",
        "adhoc": True,
        "period": "2026-M10",
        "deadline": "2026-11-05T17:00:00+07:00",
    }


_IMPORTED = """
[[regime]]
code = "{code}"
name_vi = "Báo cáo thử"
name_en = "Test report"
legal_basis = "test"
issuing_agency = "VPCP"
receiving_agency = "VPCP"
reporters = ["UBND_79"]
{more}
"""


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (
            'frequency = "ADHOC"\nperiod = "2026-M10"\nitems = [{ indicator = "DOSSIERS_TOTAL" }]',
            "regime BAD: an ad-hoc regime needs both the period it asks for (e.g. 2026-M10) and its deadline,"
            " an instant with its offset (e.g. 2026-11-05T17:00:00+07:00)",
        ),
        (
            'frequency = "ADHOC"\ndeadline = 2026-11-05T17:00:00+07:00\nitems = [{ indicator = "DOSSIERS_TOTAL" }]',
            "regime BAD: an ad-hoc regime needs both the period it asks for (e.g. 2026-M10) and its deadline,"
            " an instant with its offset (e.g. 2026-11-05T17:00:00+07:00)",
        ),
        (
            'frequency = "ADHOC"\nperiod = "2026-M10"\ndeadline = 2026-11-05T17:00:00\n'
            'items = [{ indicator = "DOSSIERS_TOTAL" }]',
            "regime BAD: deadline 2026-11-05T17:00:00 has no offset: write e.g. 2026-11-05T17:00:00+07:00",
        ),
        (
            'frequency = "ADHOC"\nperiod = "2026-M10"\ndeadline = "2026-11-05 17:00"\n'
            'items = [{ indicator = "DOSSIERS_TOTAL" }]',
            "regime BAD: deadline 2026-11-05T17:00:00 has no offset: write e.g. 2026-11-05T17:00:00+07:00",
        ),
        (
            'frequency = "ADHOC"\nperiod = "2025-W53"\ndeadline = 2026-01-05T17:00:00+07:00\n'
            'items = [{ indicator = "DOSSIERS_TOTAL" }]',
            "regime BAD: 2025-W53 is not a week: 2025 has 52 ISO weeks",
        ),
        (
            'frequency = "M"\nperiod = "2026-W44"\ndeadline = 2026-11-05T17:00:00+07:00\n'
            'items = [{ indicator = "DOSSIERS_TOTAL" }]',
            "regime BAD is monthly (M), but it asks for 2026-W44, a weekly period: write frequency ADHOC (or W)",
        ),
        (
            'frequency = "ADHOC"\nperiod = "2026-M10"\ndeadline = 2026-11-05T17:00:00+07:00\n'
            'items = [{ indicator = "GDP_CUR" }]',
            "regime BAD is monthly (M), but GDP_CUR is quarterly (Q): its form may hold only monthly indicators",
        ),
        (
            'frequency = "W"\ndeadline = { rule = "DAY_OF_NEXT_MONTH", day = 5 }\nitems = [{ indicator = "DOSSIERS_TOTAL" }]',
            "regime BAD is weekly: DAY_OF_NEXT_MONTH has no meaning for a week; count DAYS_AFTER_CUTOFF or"
            " WORKING_DAYS_AFTER_CUTOFF from the week's Sunday",
        ),
        (
            'frequency = "W"\ncutoff_start_day = 1\ndeadline = { rule = "DAYS_AFTER_CUTOFF", days = 2 }\n'
            'items = [{ indicator = "DOSSIERS_TOTAL" }]',
            "regime BAD is weekly: a week's cut-off window is the week itself, Monday to Sunday; leave the cut-off"
            " days out",
        ),
        (
            'frequency = "W"\ndeadline = { rule = "DAYS_AFTER_CUTOFF", days = 2 }\nitems = [{ indicator = "DOSSIERS_TOTAL" }]',
            "regime BAD is weekly (W), but DOSSIERS_TOTAL is monthly (M): its form may hold only weekly indicators",
        ),
    ],
    ids=[
        "adhoc-without-deadline",
        "adhoc-without-period",
        "deadline-without-offset",
        "deadline-string-without-offset",
        "no-such-week",
        "weekly-period-for-a-monthly-regime",
        "adhoc-indicator-of-another-periodicity",
        "weekly-day-of-next-month",
        "weekly-cutoff-days",
        "weekly-regime-monthly-indicator",
    ],
)
async def test_regimes_import_refuses_what_a_weekly_or_adhoc_regime_cannot_be(
    clone_demo_once, nrhub, tmp_path, more: str, message: str
) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(_IMPORTED.format(code="BAD", more=more), encoding="utf-8")
    refused = await nrhub("regimes", "import", str(file), database_url=clone_demo_once)
    assert (refused.returncode, refused.stderr) == (2, f"nrhub: error: {file}: {message}; nothing was imported\n")


async def test_regimes_import_creates_weekly_and_adhoc_regimes(clone_demo_once, nrhub, tmp_path) -> None:
    conn = await asyncpg.connect(clone_demo_once)
    try:
        indicator = await weekly_indicator(conn)
        file = tmp_path / "regimes.toml"
        file.write_text(
            _IMPORTED.format(
                code="BC_TUAN",
                more=f'frequency = "W"\ndeadline = {{ rule = "WORKING_DAYS_AFTER_CUTOFF", days = 2 }}\n'
                f'items = [{{ indicator = "{indicator}" }}]',
            )
            + _IMPORTED.format(
                code="BC_DOT_XUAT",
                more='frequency = "ADHOC"\nperiod = "2026-M10"\ndeadline = "2026-11-05T17:00:00+07:00"\n'
                'expiry_days = 3\nitems = [{ indicator = "DOSSIERS_TOTAL" }]',
            ),
            encoding="utf-8",
        )
        imported = await nrhub("regimes", "import", str(file), database_url=clone_demo_once)
        assert (imported.returncode, imported.stdout) == (0, "regime.create BC_TUAN\nregime.create BC_DOT_XUAT\n")
        rows = await conn.fetch(
            "SELECT code, frequency, deadline_rule, deadline_value, adhoc_period, adhoc_deadline, expiry_days"
            " FROM regime WHERE code IN ('BC_TUAN', 'BC_DOT_XUAT') ORDER BY code DESC"
        )
        assert [tuple(r) for r in rows] == [
            ("BC_TUAN", "W", "WORKING_DAYS_AFTER_CUTOFF", 2, None, None, None),
            ("BC_DOT_XUAT", "M", "ONE_OFF", 0, "2026-M10", datetime(2026, 11, 5, 17, tzinfo=VN), 3),
        ]
        again = await nrhub("regimes", "import", str(file), database_url=clone_demo_once)
        assert again.stdout == "unchanged BC_TUAN\nunchanged BC_DOT_XUAT\n"
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def clone_demo_once(clone_demo) -> str:
    """One private demo database for the import tests (a refused file changes nothing)."""
    return await clone_demo()
