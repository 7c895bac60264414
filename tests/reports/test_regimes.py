"""Regimes: deadlines by rule, created and changed by admin (GraphQL) and by `nrhub regimes import`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from nrhub.resolvers.deadlines import Rule, schedule
from nrhub.resolvers.periods import Period
from tests.conftest import ROOT

VN = timezone(timedelta(hours=7))


@pytest.mark.parametrize(
    ("rule", "period", "window", "deadline"),
    [
        # Monthly: 15 Oct to 14 Nov 2026; 14 Nov is a Saturday, so two working days end on Tuesday 17 Nov.
        (
            Rule(15, 14, "WORKING_DAYS_AFTER_CUTOFF", 2),
            "2026-M11",
            (date(2026, 10, 15), date(2026, 11, 14)),
            date(2026, 11, 17),
        ),
        # Quarterly: 15 Jun to 14 Sep; five days after.
        (Rule(15, 14, "DAYS_AFTER_CUTOFF", 5), "2026-Q3", (date(2026, 6, 15), date(2026, 9, 14)), date(2026, 9, 19)),
        # Half-year: 15 Dec to 14 Jun.
        (Rule(15, 14, "DAYS_AFTER_CUTOFF", 0), "2026-S1", (date(2025, 12, 15), date(2026, 6, 14)), date(2026, 6, 14)),
        # Annual: 15 Dec of the previous year to 14 Dec; day 20 of the following month.
        (Rule(15, 14, "DAY_OF_NEXT_MONTH", 20), "2026", (date(2025, 12, 15), date(2026, 12, 14)), date(2027, 1, 20)),
    ],
)
def test_windows_and_deadlines_follow_decree_09(rule, period, window, deadline) -> None:
    s = schedule(rule, Period.parse(period), holidays=set())
    assert (s.window_start, s.window_end) == window
    assert s.deadline == datetime(deadline.year, deadline.month, deadline.day, 23, 59, 59, 999999, tzinfo=VN)


def test_working_days_skip_configured_holidays() -> None:
    rule = Rule(15, 14, "WORKING_DAYS_AFTER_CUTOFF", 2)
    # 14 Aug 2026 is a Friday: Mon 17 and Tue 18 without holidays; a holiday on the 17th moves it to Wed 19.
    assert schedule(rule, Period.parse("2026-M08"), set()).deadline.date() == date(2026, 8, 18)
    assert schedule(rule, Period.parse("2026-M08"), {date(2026, 8, 17)}).deadline.date() == date(2026, 8, 19)


UPSERT = """mutation($i: RegimeInput!, $k: String!) { upsertRegime(input: $i, idempotencyKey: $k) {
  code frequency deadlineRule deadlineValue reporters { code } items { disaggregation indicator { code } } } }"""


async def test_admin_creates_and_changes_a_regime(gql, token_for, pool) -> None:
    admin = await token_for("VPCP", "admin data:read field:growth")
    reader = await token_for("BTC", "data:read field:growth")
    regime = {
        "code": "BC_GDP_QUY",
        "nameVi": "Báo cáo GDP quý",
        "nameEn": "Quarterly GDP report",
        "legalBasis": "Decree 09/2019/NĐ-CP",
        "issuingAgency": "VPCP",
        "receivingAgency": "VPCP",
        "frequency": "Q",
        "deadlineRule": "DAYS_AFTER_CUTOFF",
        "deadlineValue": 10,
        "reporters": ["BTC"],
        "items": [{"indicator": "GDP_CUR", "minValue": "0"}],
    }
    created = await gql(admin, UPSERT, i=regime, k=str(uuid.uuid4()))
    assert created["data"]["upsertRegime"]["reporters"] == [{"code": "BTC"}]
    changed = await gql(
        admin, UPSERT, i=regime | {"deadlineValue": 12, "reporters": ["BTC", "NHNN"]}, k=str(uuid.uuid4())
    )
    assert changed["data"]["upsertRegime"]["deadlineValue"] == 12
    denied = await gql(reader, UPSERT, i=regime, k=str(uuid.uuid4()))
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = await gql(admin, UPSERT, i=regime | {"frequency": "D"}, k=str(uuid.uuid4()))
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    actions = [
        r["action"]
        for r in await pool.fetch("SELECT action FROM audit_entry WHERE subject = 'regime:BC_GDP_QUY' ORDER BY seq")
    ]
    assert actions == ["regime.create", "regime.update"]


def test_regimes_import_from_toml(database_url: str, tmp_path) -> None:
    file = tmp_path / "regimes.toml"
    file.write_text(
        """
[[holiday]]
day = 2026-09-02
name = "National Day"

[[regime]]
code = "BC_IMPORTED"
name_vi = "Báo cáo nhập"
name_en = "Imported report"
legal_basis = "Decree 09/2019/NĐ-CP"
issuing_agency = "VPCP"
receiving_agency = "VPCP"
frequency = "A"
deadline = { rule = "DAY_OF_NEXT_MONTH", day = 20 }
reporters = "PROVINCES"
items = [ { indicator = "POOR_HH", min = 0 }, { indicator = "HOUSEHOLDS", min = 0 } ]
""",
        encoding="utf-8",
    )
    env = {**os.environ, "HUB_DATABASE_URL": database_url}
    nrhub = [sys.executable, "-m", "nrhub.cli"]
    first = subprocess.run([*nrhub, "regimes", "import", str(file)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "regime.create BC_IMPORTED" in first.stdout
    again = subprocess.run([*nrhub, "regimes", "import", str(file)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert "unchanged BC_IMPORTED" in again.stdout
    file.write_text(file.read_text(encoding="utf-8").replace('"POOR_HH"', '"NO_SUCH"'), encoding="utf-8")
    broken = subprocess.run([*nrhub, "regimes", "import", str(file)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert broken.returncode == 2 and "nothing was imported" in broken.stderr and "Traceback" not in broken.stderr
