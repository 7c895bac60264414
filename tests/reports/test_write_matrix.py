"""The write matrix (issue 16): every mutation x every kind of caller, with the expected outcome and
the row count and a digest of every table's rows before and after.

A refused call changes no table at all; an allowed one changes exactly the tables its step writes.
The callers: the reporter of the report's unit, a reporter of another unit, the receiving agency's
reviewer, a read-only token, an anonymous caller and an admin.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.reports.flows import key

VN = timezone(timedelta(hours=7))
PERIOD = "2026-M04"
CELLS = [
    {"indicator": c, "value": v}
    for c, v in (
        ("RETAIL", "5100"),
        ("BUDGET_REV", "4200"),
        ("BUDGET_EXP", "3900"),
        ("NEW_ENT", "120"),
        ("TRAFFIC_DEATHS", "4"),
        ("DOSSIERS_ONLINE", "800"),
        ("DOSSIERS_TOTAL", "950"),
    )
]
OPEN = 'mutation($p: Period!, $k: String!) { openDraft(regime: "BC_KTXH_THANG", period: $p, idempotencyKey: $k) { submissionId } }'
SAVE = "mutation($s: Int!, $v: [CellInput!]!, $k: String!) { saveValues(submissionId: $s, values: $v, idempotencyKey: $k) { problems { message } } }"
SUBMIT = "mutation($s: Int!, $k: String!) { submitReport(submissionId: $s, idempotencyKey: $k) { status } }"
ACCEPT = "mutation($s: Int!, $k: String!) { reviewReport(submissionId: $s, decision: ACCEPT, idempotencyKey: $k) { status } }"
CORRECT = 'mutation($s: Int!, $k: String!) { correctValue(submissionId: $s, cells: [{indicator: "RETAIL", value: "5150"}], reason: "late invoices", idempotencyKey: $k) { submissionId status } }'
UPSERT = "mutation($i: RegimeInput!, $k: String!) { upsertRegime(input: $i, idempotencyKey: $k) { code } }"
REGIME = {
    "code": "BC_MA_TRAN",
    "nameVi": "Báo cáo kiểm thử ma trận ghi",
    "nameEn": "Write matrix test report",
    "legalBasis": "test",
    "issuingAgency": "VPCP",
    "receivingAgency": "VPCP",
    "frequency": "A",
    "deadlineRule": "DAY_OF_NEXT_MONTH",
    "deadlineValue": 20,
    "reporters": ["PROVINCES"],
    "items": [{"indicator": "FOREST_AREA"}],
}
CALLERS = ("reporter", "other_reporter", "reviewer", "reader", "anonymous", "admin")

# Per mutation: who may call it, and which tables the allowed call changes (every other table,
# and every table on a refused call, keeps its row count).
MATRIX = {
    "saveValues": ("reporter", {"submission_value", "audit_entry", "idempotency_key"}),
    "submitReport": ("reporter", {"submission", "audit_entry", "idempotency_key"}),
    "reviewReport": (
        "reviewer",
        # observation_latest keeps its rows: the demo has later months of these figures.
        {
            "submission",
            "submission_approval",
            "audit_entry",
            "idempotency_key",
            "observation_revision",
            "observation_current",
        },
    ),
    "correctValue": ("reporter", {"submission", "submission_value", "audit_entry", "idempotency_key"}),
    "upsertRegime": ("admin", {"regime", "regime_reporter", "regime_item", "audit_entry", "idempotency_key"}),
}


@pytest.fixture(scope="module")
async def callers(token_for) -> dict[str, str | None]:
    return {
        "reporter": await token_for("UBND_44", "reports:submit"),
        "other_reporter": await token_for("UBND_42", "reports:submit"),
        "reviewer": await token_for("VPCP", "reports:review"),
        "reader": await token_for("VPCP", "data:read catalog:read"),
        "anonymous": None,
        "admin": await token_for("VPCP", "admin"),
    }


async def call(report_hub: str, token: str | None, query: str, **variables: object) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{report_hub}/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def table_counts(pool) -> dict[str, tuple[int, int]]:
    """Every table's row count, and a digest of its rows: an UPDATE changes no count."""
    tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    return {
        t["tablename"]: tuple(
            await pool.fetchrow(
                f'SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM "{t["tablename"]}" t'
            )
        )
        for t in tables
    }


def changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> set[str]:
    return {t for t in after if after[t] != before.get(t)}


async def test_every_mutation_by_every_caller(report_hub, callers, clock, pool) -> None:
    clock.now = datetime(2026, 4, 16, 9, 0, tzinfo=VN)
    opened = await call(report_hub, callers["reporter"], OPEN, p=PERIOD, k=key())
    draft = opened["data"]["openDraft"]["submissionId"]
    steps = {
        "saveValues": (SAVE, {"s": draft, "v": CELLS}),
        "submitReport": (SUBMIT, {"s": draft}),
        "reviewReport": (ACCEPT, {"s": draft}),
        "correctValue": (CORRECT, {"s": draft}),
        "upsertRegime": (UPSERT, {"i": REGIME}),
    }
    outcomes: dict[tuple[str, str], str] = {}

    async def attempt(mutation: str, caller: str) -> None:
        query, variables = steps[mutation]
        result = await call(report_hub, callers[caller], query, **variables, k=key())
        outcomes[(mutation, caller)] = result["errors"][0]["extensions"]["code"] if result.get("errors") else "ok"

    for mutation in steps:
        allowed, writes = MATRIX[mutation]
        # Every other caller first: together they change nothing, not a row, not a value.
        before = await table_counts(pool)
        for caller in CALLERS:
            if caller != allowed:
                await attempt(mutation, caller)
        between = await table_counts(pool)
        assert changed(before, between) == set(), mutation
        await attempt(mutation, allowed)
        assert changed(between, await table_counts(pool)) == writes, mutation
    expected = {
        (mutation, caller): "ok" if caller == MATRIX[mutation][0] else "FORBIDDEN"
        for mutation in steps
        for caller in CALLERS
    }
    assert outcomes == expected


async def test_opening_a_draft_is_for_the_callers_own_agency(report_hub, callers, clock, pool) -> None:
    """openDraft takes no agency: a reporter of another unit opens its own report, never this one."""
    clock.now = datetime(2026, 4, 16, 9, 0, tzinfo=VN)
    outcomes = {}
    for caller in CALLERS:
        before = await table_counts(pool)
        result = await call(report_hub, callers[caller], OPEN, p="2026-M03", k=key())
        after = await table_counts(pool)
        if result.get("errors"):
            outcomes[caller] = result["errors"][0]["extensions"]["code"]
            assert changed(before, after) == set(), caller
        else:
            outcomes[caller] = "ok"
            agency = await pool.fetchval(
                "SELECT agency_code FROM submission WHERE id = $1", result["data"]["openDraft"]["submissionId"]
            )
            outcomes[caller] = f"ok {agency}"
    assert outcomes == {
        "reporter": "ok UBND_44",
        "other_reporter": "ok UBND_42",
        "reviewer": "FORBIDDEN",
        "reader": "FORBIDDEN",
        "anonymous": "FORBIDDEN",
        "admin": "FORBIDDEN",
    }
