"""For any figure a reporter sends, what is stored, what is audited and what is served are one value;
a figure the numeric column cannot hold exactly, or with more decimals than the indicator publishes,
is refused as BAD_USER_INPUT and changes nothing
(issue 16, hole 11: 1e131072 was stored and published as 0 while the audit recorded it).

Hypothesis draws figures around the column's limits (131,072 digits before the point, 16,383 after)
and in the everyday range; each one goes through the real workflow over HTTP: a correction of an
accepted report, accepted by the receiving agency, then read back from the table, the audit entry
and the GraphQL API. The calls run in a worker thread, so the hub keeps serving on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reports.flows import key

VN = timezone(timedelta(hours=7))
UNIT, PERIOD = "12", "2026-M02"
MONTHLY = ["RETAIL", "BUDGET_REV", "BUDGET_EXP", "NEW_ENT", "TRAFFIC_DEATHS", "DOSSIERS_ONLINE", "DOSSIERS_TOTAL"]
OPEN = 'mutation($k: String!) { openDraft(regime: "BC_KTXH_THANG", period: "2026-M02", idempotencyKey: $k) { submissionId } }'
SAVE = "mutation($s: Int!, $v: [CellInput!]!, $k: String!) { saveValues(submissionId: $s, values: $v, idempotencyKey: $k) { problems { message } } }"
SUBMIT = "mutation($s: Int!, $k: String!) { submitReport(submissionId: $s, idempotencyKey: $k) { status } }"
ACCEPT = "mutation($s: Int!, $k: String!) { reviewReport(submissionId: $s, decision: ACCEPT, idempotencyKey: $k) { status } }"
CORRECT = 'mutation($s: Int!, $v: Decimal!, $k: String!) { correctValue(submissionId: $s, cells: [{indicator: "RETAIL", value: $v}], reason: "property test", idempotencyKey: $k) { submissionId } }'
SERVED = '{ observation(indicator: "RETAIL", unit: "12", period: "2026-M02") { value } }'


def storable(value: Decimal, decimals: int) -> bool:
    """Written from the column's documented limits and the indicator's published decimals (issue 19),
    not from the hub's code."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    within_decimals = not value or exponent + trailing_zeros >= -decimals
    return exponent >= -16383 and (not value or value.adjusted() < 131072) and within_decimals


# Non-negative: RETAIL's form refuses negatives at submission, a different rule from this one.
figures = st.builds(
    lambda digits, exponent: Decimal((0, tuple(digits), exponent)),
    st.lists(st.integers(0, 9), min_size=1, max_size=40),
    st.one_of(st.integers(-16400, -16370), st.integers(-12, 12), st.integers(131030, 131080)),
)


async def test_stored_audited_and_served_are_one_value(report_hub, token_for, clock, pool) -> None:
    reporter = await token_for("UBND_12", "reports:submit")
    office = await token_for("VPCP", "reports:review data:read field:growth")
    clock.now = datetime(2026, 2, 16, 9, 0, tzinfo=VN)
    loop = asyncio.get_running_loop()

    def gql(token: str, query: str, **variables: object) -> dict:
        response = httpx.post(
            f"{report_hub}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        # 400: a variable's value refused before execution (GraphQL over HTTP, graphql-response+json).
        assert response.status_code in (200, 400), response.text
        # The served digits, not a float's; integers past int()'s 4,300 digits as Decimal.
        return json.loads(
            response.text, parse_float=Decimal, parse_int=lambda t: int(t) if len(t) < 4000 else Decimal(t)
        )

    def db(query: str, *args: object) -> object:
        return asyncio.run_coroutine_threadsafe(pool.fetchval(query, *args), loop).result(30)

    def accept(submission: int) -> None:
        assert gql(office, ACCEPT, s=submission, k=key())["data"]["reviewReport"]["status"] == "ACCEPTED"

    def first_version() -> int:
        opened = gql(reporter, OPEN, k=key())["data"]["openDraft"]["submissionId"]
        cells = [{"indicator": c, "value": str(100 + i)} for i, c in enumerate(MONTHLY)]
        assert gql(reporter, SAVE, s=opened, v=cells, k=key())["data"]["saveValues"]["problems"] == []
        assert gql(reporter, SUBMIT, s=opened, k=key())["data"]["submitReport"]["status"] == "SUBMITTED"
        accept(opened)
        return int(opened)

    accepted = [await asyncio.to_thread(first_version)]
    decimals = int(await pool.fetchval("SELECT decimals FROM indicator WHERE code = 'RETAIL'"))
    seen = {"refused": 0, "stored": 0}

    @settings(max_examples=40, deadline=None, database=None)
    @given(value=figures)
    def check(value: Decimal) -> None:
        current = db(
            "SELECT c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id WHERE u.code = $1"
            " AND u.valid_to IS NULL AND c.indicator_code = 'RETAIL' AND c.period = $2 AND c.dims = ''",
            UNIT,
            PERIOD,
        )
        if value == current:
            return  # a correction that changes nothing is refused for that reason
        result = gql(reporter, CORRECT, s=accepted[-1], v=str(value), k=key())
        if not storable(value, decimals):
            assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (value, result)
            seen["refused"] += 1
            return
        assert "errors" not in result, (value, result)
        version = result["data"]["correctValue"]["submissionId"]
        accept(version)
        accepted.append(version)
        stored = db(
            "SELECT c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id WHERE u.code = $1"
            " AND u.valid_to IS NULL AND c.indicator_code = 'RETAIL' AND c.period = $2 AND c.dims = ''",
            UNIT,
            PERIOD,
        )
        audited = db(
            "SELECT after->>(SELECT k FROM jsonb_object_keys(after) k WHERE k LIKE '%|RETAIL|') FROM audit_entry"
            " WHERE subject = $1 AND action = 'submission.values'",
            f"submission:{version}",
        )
        served = gql(office, SERVED)["data"]["observation"]["value"]
        assert stored == value and Decimal(str(audited)) == value and Decimal(served) == value, value
        seen["stored"] += 1

    await asyncio.to_thread(check)
    assert seen["refused"] and seen["stored"], seen  # both sides of the limit were tried
