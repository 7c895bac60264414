"""Issue 19's regime defects: a form of the wrong periodicity, the holiday list an import replaced
silently, the demo load re-adding form cells, drafts keeping a deadline the holidays moved."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import httpx

from nrhub.auth.clients import create_client
from nrhub.demo.regimes import REGIMES, load_regimes
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.audit import Actor
from nrhub.resolvers.regime_admin import ItemSpec, RegimeSpec, upsert_regime
from tests.conftest import serving_hub
from tests.reports.flows import MONTHLY, cell_values

VN = timezone(timedelta(hours=7))
OPERATOR = Actor(agency=None, client=None, user="test operator")
UPSERT = """mutation($i: RegimeInput!, $k: String!) { upsertRegime(input: $i, idempotencyKey: $k) { code } }"""
MONTHLY_REGIME = """
[[regime]]
code = "BC_THANG_SAI"
name_vi = "Báo cáo tháng"
name_en = "Monthly report"
legal_basis = "Decree 09/2019/NĐ-CP"
issuing_agency = "VPCP"
receiving_agency = "VPCP"
frequency = "M"
deadline = { rule = "WORKING_DAYS_AFTER_CUTOFF", days = 2 }
reporters = "PROVINCES"
items = [ { indicator = "RETAIL", min = 0 }, { indicator = "UNEMPLOYED", disaggregation = "SEX=F" } ]
"""


def _holidays(*days: str) -> str:
    return "".join(f'[[holiday]]\nday = {d}\nname = "holiday {d}"\n\n' for d in days)


async def test_upsert_regime_refuses_an_indicator_of_another_periodicity(gql, token_for, pool) -> None:
    admin = await token_for("VPCP", "admin")
    regime = {
        "code": "BC_THANG_SAI",
        "nameVi": "Báo cáo tháng",
        "nameEn": "Monthly report",
        "legalBasis": "Decree 09/2019/NĐ-CP",
        "issuingAgency": "VPCP",
        "receivingAgency": "VPCP",
        "frequency": "M",
        "deadlineRule": "DAYS_AFTER_CUTOFF",
        "deadlineValue": 5,
        "reporters": ["UBND_01"],
        "items": [{"indicator": "RETAIL"}, {"indicator": "UNEMPLOYED", "disaggregation": "SEX=F"}],
    }
    refused = await gql(admin, UPSERT, i=regime, k=str(uuid.uuid4()))
    (error,) = refused["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == (
        "regime BC_THANG_SAI is monthly (M), but UNEMPLOYED is quarterly (Q): its form may hold only monthly indicators"
    )
    assert await pool.fetchval("SELECT count(*) FROM regime WHERE code = 'BC_THANG_SAI'") == 0
    # The same regime with a monthly form is created.
    regime["items"] = [{"indicator": "RETAIL"}, {"indicator": "EXPORT", "disaggregation": "OWNERSHIP=FDI"}]
    created = await gql(admin, UPSERT, i=regime, k=str(uuid.uuid4()))
    assert created["data"]["upsertRegime"] == {"code": "BC_THANG_SAI"}, created


async def test_regimes_import_refuses_it_in_one_line_with_status_2(clone_demo, nrhub, tmp_path) -> None:
    url = await clone_demo()
    file = tmp_path / "regimes.toml"
    file.write_text(_holidays("2026-11-16") + MONTHLY_REGIME, encoding="utf-8")
    refused = await nrhub("regimes", "import", str(file), database_url=url)
    assert refused.returncode == 2, refused
    assert refused.stdout == ""
    assert refused.stderr == (
        f"nrhub: error: {file}: regime BC_THANG_SAI is monthly (M), but UNEMPLOYED is quarterly (Q):"
        " its form may hold only monthly indicators; nothing was imported\n"
    )
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM regime WHERE code = 'BC_THANG_SAI'") == 0
        assert await conn.fetchval("SELECT count(*) FROM holiday WHERE day = '2026-11-16'") == 0
    finally:
        await conn.close()


def _help_example(text: str) -> str:
    """The TOML example of ``nrhub regimes import --help``: its indented block."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "[[holiday]]")
    block = []
    for line in lines[start:]:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block) + "\n"


async def test_the_help_example_imports_cleanly_and_adds_its_holiday(clone_demo, nrhub, tmp_path) -> None:
    url = await clone_demo()
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO holiday (day, name) VALUES ('2026-04-30', 'Reunification Day')")
        helped = await nrhub("regimes", "import", "--help", database_url=url)
        assert helped.returncode == 0
        file = tmp_path / "example.toml"
        file.write_text(_help_example(helped.stdout), encoding="utf-8")
        assert "BC_THUONG_MAI_THANG" in file.read_text(encoding="utf-8")
        imported = await nrhub("regimes", "import", str(file), database_url=url)
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout == (
            "regime.create BC_THUONG_MAI_THANG\n"
            "holidays: added to the stored list, 1 day(s) before, 2 after; 0 draft deadline(s) moved\n"
        )
        days = {r["day"]: r["name"] for r in await conn.fetch("SELECT day, name FROM holiday")}
        assert days == {date(2026, 4, 30): "Reunification Day", date(2026, 9, 2): "National Day"}
        items = await conn.fetch(
            "SELECT indicator_code, dims FROM regime_item WHERE regime_code = 'BC_THUONG_MAI_THANG' ORDER BY 1, 2"
        )
        assert [tuple(r) for r in items] == [("EXPORT", "OWNERSHIP=FDI"), ("RETAIL", "")]
        window = await conn.fetchrow("SELECT allow_early, expiry_days FROM regime WHERE code = 'BC_THUONG_MAI_THANG'")
        assert tuple(window) == (False, 15)

        # --replace-holidays makes the file's list the whole list, and says so.
        replaced = await nrhub("regimes", "import", "--replace-holidays", str(file), database_url=url)
        assert replaced.returncode == 0, replaced.stderr
        assert replaced.stdout == (
            "unchanged BC_THUONG_MAI_THANG\n"
            "holidays: replaced the stored list, 2 day(s) before, 1 after; 0 draft deadline(s) moved\n"
        )
        assert await conn.fetchval("SELECT array_agg(day) FROM holiday") == [date(2026, 9, 2)]
        actions = await conn.fetch("SELECT action FROM audit_entry WHERE subject = 'holidays' ORDER BY seq")
        assert [r["action"] for r in actions] == ["holidays.merge", "holidays.replace"]
    finally:
        await conn.close()


async def test_demo_load_leaves_a_changed_regime_alone(clone_demo, new_reference_database) -> None:
    conn = await asyncpg.connect(await clone_demo())
    try:
        spec = RegimeSpec(
            code="BC_BO_QUY",
            name_vi="Báo cáo quý của bộ, ngành",
            name_en="Quarterly ministry report",
            legal_basis="Decree 09/2019/NĐ-CP",
            issuing_agency="VPCP",
            receiving_agency="VPCP",
            frequency="Q",
            deadline_rule="DAYS_AFTER_CUTOFF",
            deadline_value=5,
            reporters=["BTC"],
            items=[ItemSpec("GDP_CUR", min_value=Decimal(0))],
        )
        async with conn.transaction():
            assert await upsert_regime(conn, OPERATOR, spec, now=datetime.now(UTC)) == "regime.update"
        before = await conn.fetchval("SELECT max(seq) FROM audit_entry")
        async with conn.transaction():
            await load_regimes(conn)  # what every `nrhub demo load` (every `make run`) does
        items = await conn.fetch("SELECT indicator_code FROM regime_item WHERE regime_code = 'BC_BO_QUY'")
        reporters = await conn.fetch("SELECT agency_code FROM regime_reporter WHERE regime_code = 'BC_BO_QUY'")
        assert [r["indicator_code"] for r in items] == ["GDP_CUR"]
        assert [r["agency_code"] for r in reporters] == ["BTC"]
        assert await conn.fetchval("SELECT max(seq) FROM audit_entry") == before
    finally:
        await conn.close()
    # Into a database without them, the demo's regimes are created, audited like any regime.
    conn = await asyncpg.connect(await new_reference_database())
    try:
        async with conn.transaction():
            await load_regimes(conn)
        created = await conn.fetch("SELECT subject FROM audit_entry WHERE action = 'regime.create' ORDER BY 1")
        assert [r["subject"] for r in created] == ["regime:BC_BO_QUY", "regime:BC_KTXH_NAM", "regime:BC_KTXH_THANG"]
        assert await conn.fetchval("SELECT count(*) FROM regime_item WHERE regime_code = 'BC_KTXH_NAM'") == 6
        assert await conn.fetchval("SELECT count(*) FROM regime_reporter WHERE regime_code = 'BC_KTXH_THANG'") == 34
    finally:
        await conn.close()


async def _token(hub: str, conn: asyncpg.Connection, agency: str, scopes: str) -> str:
    client, secret = await create_client(conn, agency=agency, scopes=scopes.split())
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
        )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


async def test_a_holiday_moves_drafts_deadlines_not_submitted_ones(clone_demo, nrhub, tmp_path) -> None:
    url = await clone_demo()
    opened_at = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
    conn = await asyncpg.connect(url)
    try:
        drafting, submitting = (Actor(agency=a, client=f"client-{a}", user=None) for a in ("UBND_92", "UBND_96"))
        async with conn.transaction():
            draft = await workflow.open_draft(conn, drafting, regime=MONTHLY, period="2026-M11", now=opened_at)
            sent = await workflow.open_draft(conn, submitting, regime=MONTHLY, period="2026-M11", now=opened_at)
            cells = [workflow.CellValue(c["indicator"], "", Decimal(c["value"])) for c in cell_values(MONTHLY, 900)]
            await workflow.save_values(conn, submitting, sent.id, cells, now=opened_at)
            await workflow.submit(conn, submitting, sent.id, now=opened_at)
        # 14 Nov 2026 is a Saturday: two working days after the cut-off end on Tuesday 17 Nov.
        old = datetime(2026, 11, 17, 23, 59, 59, 999999, tzinfo=VN)
        assert draft.deadline == old == sent.deadline

        file = tmp_path / "holidays.toml"
        file.write_text(_holidays("2026-11-16"), encoding="utf-8")
        imported = await nrhub("regimes", "import", str(file), database_url=url)
        assert imported.returncode == 0, imported.stderr
        moved = int(re.fullmatch(r"holidays: .*; (\d+) draft deadline\(s\) moved\n", imported.stdout)[1])
        assert moved >= 1

        new = datetime(2026, 11, 18, 23, 59, 59, 999999, tzinfo=VN)
        deadlines = dict(
            await conn.fetch("SELECT id, deadline FROM submission WHERE id = ANY($1)", [draft.id, sent.id])
        )
        assert deadlines == {draft.id: new, sent.id: old}  # the submitted report keeps what it was judged against
        entry = await conn.fetchrow(
            "SELECT before, after FROM audit_entry WHERE action = 'submission.reschedule' AND subject = $1",
            f"submission:{draft.id}",
        )
        assert entry is not None and "2026-11-17" in entry["before"] and "2026-11-18" in entry["after"]
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM audit_entry WHERE subject = $1 AND action = 'submission.reschedule'",
                f"submission:{sent.id}",
            )
            == 0
        )

        # A change of the regime's deadline rule moves drafts too: three working days, the 16th a holiday.
        code, vi, en, basis, freq, rule, _, reporters, items = REGIMES[0]
        spec = RegimeSpec(
            code, vi, en, basis, "VPCP", "VPCP", freq, rule, 3, ["PROVINCES"],
            [ItemSpec(i, min_value=Decimal(0)) for i in items], jump_threshold=Decimal("0.5"),
        )  # fmt: skip
        assert code == MONTHLY and reporters == "PROVINCES"
        async with conn.transaction():
            assert await upsert_regime(conn, OPERATOR, spec, now=datetime.now(UTC)) == "regime.update"
        new = datetime(2026, 11, 19, 23, 59, 59, 999999, tzinfo=VN)
        deadlines = dict(
            await conn.fetch("SELECT id, deadline FROM submission WHERE id = ANY($1)", [draft.id, sent.id])
        )
        assert deadlines == {draft.id: new, sent.id: old}

        # The draft, as its reporter reads it, and timeliness, as the receiver reads it, say the same deadline.
        async with serving_hub(url, clock=lambda: opened_at, token_rate_limit=10_000) as hub:
            reporter = await _token(hub, conn, "UBND_92", "reports:submit")
            office = await _token(hub, conn, "VPCP", "reports:review")
            async with httpx.AsyncClient(timeout=30) as http:
                own = await http.post(
                    f"{hub}/graphql",
                    json={"query": f"{{ submission(submissionId: {draft.id}) {{ deadline }} }}"},
                    headers={"Authorization": f"Bearer {reporter}"},
                )
                timeliness = await http.post(
                    f"{hub}/graphql",
                    json={"query": '{ timeliness(regime: "BC_KTXH_THANG", period: "2026-M11") '
                              "{ reports { agencyCode deadline } } }"},
                    headers={"Authorization": f"Bearer {office}"},
                )  # fmt: skip
        assert datetime.fromisoformat(own.json()["data"]["submission"]["deadline"]) == new, own.json()
        shown = {r["agencyCode"]: r["deadline"] for r in timeliness.json()["data"]["timeliness"]["reports"]}
        assert datetime.fromisoformat(shown["UBND_92"]) == new, timeliness.json()
    finally:
        await conn.close()
