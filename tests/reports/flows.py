"""Helpers shared by the audit, concurrency and crash tests: report flows and audit-chain checks."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from nrhub.resolvers import approvals
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.audit import GENESIS, Actor

MONTHLY = "BC_KTXH_THANG"
QUARTERLY = "BC_BO_QUY"
CELLS = {
    MONTHLY: ["RETAIL", "BUDGET_REV", "BUDGET_EXP", "NEW_ENT", "TRAFFIC_DEATHS", "DOSSIERS_ONLINE", "DOSSIERS_TOTAL"],
    QUARTERLY: ["GDP_CUR", "INV_TOTAL", "UNEMPLOYED", "LABOUR_FORCE"],
}

OPEN = """mutation($r: String!, $p: Period!, $k: String!) {
  openDraft(regime: $r, period: $p, idempotencyKey: $k) { submissionId status }
}"""
SAVE = """mutation($s: Int!, $v: [CellInput!]!, $k: String!) {
  saveValues(submissionId: $s, values: $v, idempotencyKey: $k) { problems { indicator message severity } }
}"""
SUBMIT = """mutation($s: Int!, $k: String!) {
  submitReport(submissionId: $s, idempotencyKey: $k) { submissionId status submittedAt }
}"""
REVIEW = """mutation($s: Int!, $d: ReviewDecision!, $k: String!) {
  reviewReport(submissionId: $s, decision: $d, idempotencyKey: $k) { submissionId status }
}"""


async def reporters(conn: asyncpg.Connection | asyncpg.Pool, regime: str) -> list[str]:
    """The agencies that report under the regime (the 34 provincial committees for the monthly one)."""
    rows = await conn.fetch("SELECT agency_code FROM regime_reporter WHERE regime_code = $1 ORDER BY 1", regime)
    return [r["agency_code"] for r in rows]


def key() -> str:
    return str(uuid.uuid4())


def cell_values(regime: str, base: int) -> list[dict[str, str]]:
    """Whole, non-negative values for every cell of the regime's form (DOSSIERS_ONLINE < DOSSIERS_TOTAL)."""
    return [{"indicator": code, "value": str(base + 10 * i)} for i, code in enumerate(CELLS[regime])]


def ok(response: dict[str, Any], field: str) -> dict[str, Any] | None:
    """The field's data when the response was acknowledged (data present, no errors), else None."""
    if response.get("errors"):
        return None
    data = response.get("data") or {}
    result = data.get(field)
    return result if isinstance(result, dict) else None


async def accepted_report(
    conn: asyncpg.Connection, agency: str, period: str, now: datetime, *, base: int = 1000
) -> int:
    """A province's monthly report opened, filled, submitted and accepted through the workflow functions."""
    actor = Actor(agency=agency, client=f"test-client-{agency}", user=None, request_id=uuid.uuid4().hex)
    office = Actor(agency="VPCP", client="test-client-VPCP", user=None, request_id=uuid.uuid4().hex)
    async with conn.transaction():
        draft = await workflow.open_draft(conn, actor, regime=MONTHLY, period=period, now=now)
    cells = [workflow.CellValue(c["indicator"], "", Decimal(c["value"])) for c in cell_values(MONTHLY, base)]
    async with conn.transaction():
        _, problems = await workflow.save_values(conn, actor, draft.id, cells, now=now)
    assert problems == []
    async with conn.transaction():
        await workflow.submit(conn, actor, draft.id, now=now)
    async with conn.transaction():
        await approvals.decide(conn, office, draft.id, approvals.Decision.APPROVE, None, now=now)
    return draft.id


async def entry_seq(conn: asyncpg.Connection, action: str, subject: str) -> int:
    seq = await conn.fetchval("SELECT seq FROM audit_entry WHERE action = $1 AND subject = $2", action, subject)
    assert seq is not None, f"no {action} entry for {subject}"
    return int(seq)


async def assert_linear_chain(conn: asyncpg.Connection) -> int:
    """seq 1..N without gaps, each prev_hash the previous entry's hash, no prev_hash shared; returns N."""
    rows = await conn.fetch("SELECT seq, prev_hash, hash FROM audit_entry ORDER BY seq")
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    expected_prev = GENESIS
    for r in rows:
        assert bytes(r["prev_hash"]) == expected_prev, f"entry {r['seq']} does not follow entry {r['seq'] - 1}"
        expected_prev = bytes(r["hash"])
    assert len({bytes(r["prev_hash"]) for r in rows}) == len(rows)
    assert len({bytes(r["hash"]) for r in rows}) == len(rows)
    return len(rows)


def assert_names_entry(run: Any, seq: int) -> str:
    """``nrhub audit verify`` failed with exit 1 and one line on stderr whose first entry named is ``seq``."""
    assert run.returncode == 1, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    named = re.search(r"\bentry (\d+)\b", lines[0])
    assert named is not None and int(named.group(1)) == seq, lines[0]
    return lines[0]
