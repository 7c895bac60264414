"""Fixtures for the trust tests: small private databases with audited observations, and ``nrhub`` as a process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from nrhub.demo.regimes import load_regimes
from nrhub.resolvers.audit import SYSTEM, append_entry, revision_digest
from tests.conftest import CliRun, run_nrhub

ROOT = Path(__file__).resolve().parents[2]
PERIODS = {
    "A": ("2024", "2025"),
    "S": ("2025-S1", "2025-S2"),
    "Q": ("2025-Q1", "2025-Q2"),
    "M": ("2025-M01", "2025-M02"),
}


@dataclass(frozen=True)
class Seeded:
    """A reference database holding three audited keys of one indicator; the first was corrected once.

    Keys: (unit A, first period) corrected, (unit A, second period), (unit B, first period).
    """

    url: str
    indicator: str
    units: tuple[tuple[int, str], tuple[int, str]]  # (id, code) of units A and B
    periods: tuple[str, str]
    first: int  # the superseded revision of (A, first period)
    corrected: int  # its correction, the current revision of that key
    second: int  # (A, second period): the latest of series A
    other: int  # (B, first period)


_INSERT = """
INSERT INTO observation_revision (indicator_code, unit_id, period, dims, value, status, source, recorded_by,
                                  previous_id, reason)
VALUES ($1, $2, $3, '', $4, 'OFFICIAL', 'trust-test', 'trust test', $5, $6) RETURNING id
"""


async def _audited(conn: asyncpg.Connection, rows: list[tuple]) -> list[int]:
    """Insert revisions and their audit entry (revisions and digest, as an acceptance writes) in one transaction."""
    async with conn.transaction():
        ids = [await conn.fetchval(_INSERT, *row) for row in rows]
        after = {"revisions": ids, "revision_digest": await revision_digest(conn, ids)}
        await append_entry(conn, SYSTEM, "observations.load", "trust-test", after=after, at=datetime.now(UTC))
    return ids


@pytest.fixture
async def seeded(new_reference_database) -> Seeded:
    url = await new_reference_database()
    conn = await asyncpg.connect(url)
    try:
        indicator, periodicity = await conn.fetchrow(
            "SELECT code, periodicity FROM indicator WHERE source = 'hub' ORDER BY code LIMIT 1"
        )
        units = await conn.fetch(
            "SELECT id, code FROM admin_unit WHERE level = 'PROVINCE' AND valid_to IS NULL ORDER BY code LIMIT 2"
        )
        (a, a_code), (b, b_code) = units
        p1, p2 = PERIODS[periodicity]
        first, second, other = await _audited(
            conn,
            [
                (indicator, a, p1, 100, None, None),
                (indicator, a, p2, 200, None, None),
                (indicator, b, p1, 300, None, None),
            ],
        )
        (corrected,) = await _audited(conn, [(indicator, a, p1, 110, first, "trust test correction")])
    finally:
        await conn.close()
    return Seeded(url, indicator, ((a, a_code), (b, b_code)), (p1, p2), first, corrected, second, other)


nrhub = run_nrhub  # the real command line, as an operator runs it


def failed_naming(run: CliRun, *names: str) -> str:
    """``nrhub audit verify`` exited 1 with one line on stderr naming every one of ``names``."""
    assert run.returncode == 1, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
async def workflow_url(new_reference_database) -> str:
    """A reference database with the demo's regimes: enough to run the reporting workflow."""
    url = await new_reference_database()
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():  # the regimes and their audit entries commit together
            await load_regimes(conn)
    finally:
        await conn.close()
    return url
