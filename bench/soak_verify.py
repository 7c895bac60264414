"""After the soak: is every acknowledged write there, exactly as acknowledged? (bench/soak.py)

Three readings, with PostgreSQL up and the load stopped:

- through the API, as each report's owner (its province's client, which sees every cell of its own
  reports): every submission the ledger holds has an allowed status and, where a save or correction
  was acknowledged, exactly those cells;
- in the database, as its owner (no grants, no row security in the way): every slot whose acceptance
  was acknowledged serves exactly the accepted cells as current observations, and every revision
  made from an acknowledged submission holds that submission's value;
- ``nrhub audit verify``: the audit chain, the digests, and that what is served is what the revisions say.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg
import httpx

from bench.servers import ROOT
from bench.soak_http import Tally, Tokens, graphql
from bench.soak_writes import CELLS, Expected, Ledger, Slot, Values

SUBMISSION = """query($s: Int!) {
  submission(submissionId: $s) { status values { unit indicator disaggregation value } }
}"""
CURRENT = """SELECT c.indicator_code, c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id
WHERE u.code = $1 AND u.valid_to IS NULL AND c.period = $2 AND c.dims = '' AND c.indicator_code = ANY($3::text[])"""
REVISIONS = """SELECT submission_id, indicator_code, value FROM observation_revision
WHERE submission_id = ANY($1::bigint[])"""
SHOWN = 10  # mismatches printed; all are counted


@dataclass
class Verification:
    submissions: int = 0
    submissions_ok: int = 0
    slots: int = 0
    slots_ok: int = 0
    revisions: int = 0
    revisions_ok: int = 0
    audit_exit: int | None = None
    audit_output: str = ""
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)

    @property
    def writes_ok(self) -> bool:
        checked = self.submissions == self.submissions_ok and self.slots == self.slots_ok
        return checked and self.revisions == self.revisions_ok


async def verify_ledger(
    ledger: Ledger, http: httpx.AsyncClient, tokens: Tokens, database_url: str, concurrency: int = 4
) -> Verification:
    result = Verification()
    gate = asyncio.Semaphore(concurrency)
    tally = Tally()  # the verification's own requests are not the soak's

    async def one(submission: int, expected: Expected) -> None:
        async with gate:
            await _check_submission(http, tokens, tally, submission, expected, result)

    await asyncio.gather(*(one(s, e) for s, e in ledger.submissions.items()))
    conn = await asyncpg.connect(database_url)
    try:
        slots = {id(e.slot): e.slot for e in ledger.submissions.values()}
        for slot in slots.values():
            await _check_current(conn, slot, result)
        await _check_revisions(conn, ledger, result)
    finally:
        await conn.close()
    return result


async def _check_submission(
    http: httpx.AsyncClient, tokens: Tokens, tally: Tally, submission: int, expected: Expected, result: Verification
) -> None:
    result.submissions += 1
    slot = expected.slot
    for _ in range(10):  # PostgreSQL is up; a refusal now is the hub's, but a 503 is tried again
        token = await tokens.get(slot.client)
        answer = await graphql(http, tally, "verify", token, SUBMISSION, {"s": submission})
        if answer.data is not None or not answer.transient:
            break
        await asyncio.sleep(answer.retry_after)
    found = (answer.data or {}).get("submission")
    if not isinstance(found, dict):
        return result.problem(f"submission {submission} ({slot.agency} {slot.period}): not read ({answer.outcome})")
    if found["status"] not in expected.statuses:
        return result.problem(
            f"submission {submission} ({slot.agency} {slot.period}): {found['status']},"
            f" acknowledged as {' or '.join(sorted(expected.statuses))}"
        )
    if expected.values is not None:
        cells = {v["indicator"]: Decimal(str(v["value"])) for v in found["values"] if v["unit"] == slot.unit}
        if cells != expected.values:
            return result.problem(
                f"submission {submission} ({slot.agency} {slot.period}): cells {_show(cells)},"
                f" acknowledged {_show(expected.values)}"
            )
    result.submissions_ok += 1


async def _check_current(conn: asyncpg.Connection, slot: Slot, result: Verification) -> None:
    if slot.current is None:
        return  # no acceptance acknowledged: what it serves is the demo's figures, or an unanswered acceptance's
    allowed = [slot.current, *slot.alternatives]
    result.slots += 1
    rows = await conn.fetch(CURRENT, slot.unit, slot.period, CELLS)
    served = {r["indicator_code"]: r["value"] for r in rows}
    if served in allowed:
        result.slots_ok += 1
    else:
        result.problem(
            f"{slot.agency} {slot.period}: served {_show(served)}, accepted {' or '.join(_show(v) for v in allowed)}"
        )


async def _check_revisions(conn: asyncpg.Connection, ledger: Ledger, result: Verification) -> None:
    published = {"ACCEPTED", "SUPERSEDED"}
    accepted = [s for s, e in ledger.submissions.items() if e.values is not None and e.statuses & published]
    for row in await conn.fetch(REVISIONS, accepted):
        result.revisions += 1
        expected = ledger.submissions[row["submission_id"]].values or {}
        if expected.get(row["indicator_code"]) == row["value"]:
            result.revisions_ok += 1
        else:
            result.problem(
                f"revision of submission {row['submission_id']}: {row['indicator_code']} = {row['value']},"
                f" acknowledged {expected.get(row['indicator_code'])}"
            )


def audit_verify(database_url: str, seconds: float) -> tuple[int, str]:
    """``nrhub audit verify`` on the soak's database: its exit code and last line of output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=database_url, HUB_LOG_LEVEL="warning")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "nrhub.cli", "audit", "verify"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired:
        return -1, f"did not finish in {seconds:.0f} s"
    lines = (run.stdout + run.stderr).strip().splitlines()
    return run.returncode, lines[-1] if lines else ""


def _show(values: Values) -> str:
    return "{" + ", ".join(f"{k}={values[k]}" for k in CELLS if k in values) + "}"
