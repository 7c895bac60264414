"""Approval levels and consolidation (issue 19, item 1), through the real hub over HTTP.

The full flow of the issue's acceptance: two communes of Hồ Chí Minh City report, the city's
committee accepts their reports (UNIT_ABOVE), the city's statistics office consolidates them into the
city's report, the city's committee approves it (REPORTER: another person of UBND_79), the ministry
(BNV) accepts, returns it once to the level below, and the Government Office (VPCP) accepts last.
Every step's who and when shows on the report; the values are current only at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from tests.reports.test_lifecycle import OPEN, SAVE, SUBMIT, key
from tests.reports.test_live import connected, next_payload, nothing_within, start

PERIOD = "2026-M11"  # the session clock (2026-11-16) is inside its window, before its deadline (11-19)
UPSERT = """mutation($i: RegimeInput!, $k: String!) { upsertRegime(input: $i, idempotencyKey: $k) {
  code consolidates approvalLevels { position nameEn actedBy agency publishes } } }"""
CONSOLIDATE = """mutation($s: Int!, $k: String!) { consolidateReport(submissionId: $s, idempotencyKey: $k) {
  sources missingUnits cells submission { values { indicator value consolidatedFrom } } } }"""
DECIDE = """mutation($s: Int!, $d: ReviewDecision!, $k: String!, $why: String) {
  reviewReport(submissionId: $s, decision: $d, idempotencyKey: $k, reason: $why) {
    status awaiting { position nameEn } approvals { level action agency actedBy actedAt reason } } }"""
REPORT = """query($s: Int!) { submission(submissionId: $s) {
  status reviewedBy awaiting { position } approvals { level action agency actedBy reason } } }"""
CURRENT = """query($u: [String!]!) { observations(indicators: ["DOSSIERS_TOTAL"], units: $u, from: "2026-M11",
  to: "2026-M11", first: 5) { edges { node { value provenance { kind submissionId consolidatedFrom } } } } }"""


def _regime(code: str, reporters: list[str], receiving: str, **extra: object) -> dict[str, object]:
    return {
        "code": code,
        "nameVi": "Báo cáo thử cấp duyệt",
        "nameEn": "Approval levels test report",
        "legalBasis": "test",
        "issuingAgency": "VPCP",
        "receivingAgency": receiving,
        "frequency": "M",
        "deadlineRule": "DAYS_AFTER_CUTOFF",
        "deadlineValue": 5,
        "reporters": reporters,
        "items": [{"indicator": "DOSSIERS_TOTAL"}, {"indicator": "DOSSIERS_ONLINE", "required": False}],
        **extra,
    }


def _ok(answer: dict, field: str) -> dict:
    assert "errors" not in answer, answer
    return dict(answer["data"][field])


def _refused(answer: dict) -> tuple[str, str]:
    assert answer["errors"], answer
    return answer["errors"][0]["extensions"]["code"], answer["errors"][0]["message"]


@pytest.fixture
async def communes(pool, nrhub, database_url) -> list[tuple[str, str]]:
    """Two communes of Hồ Chí Minh City with committees of their own, added as an operator adds them
    (audited, the catalogue sealed again): (agency, commune code)."""
    codes = await pool.fetch(
        "SELECT c.code FROM admin_unit c JOIN admin_unit p ON p.id = c.parent_id"
        " WHERE p.code = '79' AND c.valid_to IS NULL AND NOT EXISTS (SELECT 1 FROM agency WHERE unit_id = c.id)"
        " ORDER BY c.code LIMIT 2"
    )
    made = []
    for row in codes:
        agency = f"UBND_X{row['code']}"
        added = await nrhub("agencies", "create", "--code", agency, "--name-vi", f"UBND xã {row['code']}",
                            "--name-en", f"Commune {row['code']}", "--kind", "COMMUNE_COMMITTEE",
                            "--unit", row["code"], database_url=database_url)  # fmt: skip
        assert added.returncode == 0, added
        made.append((agency, row["code"]))
    assert len(made) == 2
    return made


async def _report(gql, token: str, regime: str, cells: list[dict[str, str]]) -> int:
    draft = _ok(await gql(token, OPEN, r=regime, p=PERIOD, k=key()), "openDraft")["submissionId"]
    _ok(await gql(token, SAVE, s=draft, v=cells, k=key()), "saveValues")
    _ok(await gql(token, SUBMIT, s=draft, k=key()), "submitReport")
    return int(draft)


async def test_a_commune_report_climbs_to_the_government_office(gql, token_for, communes) -> None:
    admin = await token_for("VPCP", "admin")
    suffix = uuid.uuid4().hex[:6].upper()
    commune_regime, city_regime = f"XA_{suffix}", f"TINH_{suffix}"
    above = [{"nameVi": "UBND tỉnh tiếp nhận", "nameEn": "Provincial committee", "actedBy": "UNIT_ABOVE"}]
    made = _ok(
        await gql(admin, UPSERT, i=_regime(commune_regime, [a for a, _ in communes], "UBND_79", approvalLevels=above),
                  k=key()),
        "upsertRegime",
    )  # fmt: skip
    assert made["approvalLevels"] == [
        {"position": 1, "nameEn": "Provincial committee", "actedBy": "UNIT_ABOVE", "agency": None, "publishes": True}
    ]
    chain = [
        {"nameVi": "UBND tỉnh phê duyệt", "nameEn": "Provincial committee approves", "actedBy": "REPORTER"},
        {"nameVi": "Bộ Nội vụ tiếp nhận", "nameEn": "Ministry accepts", "actedBy": "AGENCY", "agency": "BNV"},
        {"nameVi": "Văn phòng Chính phủ", "nameEn": "Government Office accepts", "actedBy": "AGENCY", "agency": "VPCP"},
    ]
    # The city's form adds the online share, a RATIO: consolidated from its components' sums, not averaged.
    items = [{"indicator": "DOSSIERS_TOTAL"}, {"indicator": "DOSSIERS_ONLINE"}, {"indicator": "ONLINE_PS"}]
    city = _regime(city_regime, ["UBND_79"], "VPCP", approvalLevels=chain, consolidates=commune_regime, items=items)
    made = _ok(await gql(admin, UPSERT, i=city, k=key()), "upsertRegime")
    assert made["consolidates"] == commune_regime
    assert [lv["publishes"] for lv in made["approvalLevels"]] == [False, False, True]

    # The communes report; the city's committee (the unit above) accepts each report.
    city_committee = await token_for("UBND_79", "reports:review")
    figures = [("54000", "30000"), ("46000", "21000")]
    for (agency, _), (total, online) in zip(communes, figures, strict=True):
        commune = await token_for(agency, "reports:submit")
        cells = [{"indicator": "DOSSIERS_TOTAL", "value": total}, {"indicator": "DOSSIERS_ONLINE", "value": online}]
        report = await _report(gql, commune, commune_regime, cells)
        decided = _ok(await gql(city_committee, DECIDE, s=report, d="ACCEPT", k=key()), "reviewReport")
        assert decided["status"] == "ACCEPTED"
        assert decided["approvals"][0]["agency"] == "UBND_79"
    # Another province's committee decides nothing on these.
    assert _refused(await gql(await token_for("UBND_01", "reports:review"), DECIDE, s=report, d="ACCEPT", k=key()))

    # The city's statistics office consolidates the communes' reports into the city's draft.
    office = await token_for("UBND_79", "reports:submit reports:review")
    draft = _ok(await gql(office, OPEN, r=city_regime, p=PERIOD, k=key()), "openDraft")["submissionId"]
    merged = _ok(await gql(office, CONSOLIDATE, s=draft, k=key()), "consolidateReport")
    assert merged["cells"] == 3 and len(merged["sources"]) == 2
    assert len(merged["missingUnits"]) >= 4  # the demo's other communes of the city have no report
    values = {v["indicator"]: v for v in merged["submission"]["values"]}
    assert Decimal(values["DOSSIERS_TOTAL"]["value"]) == Decimal("100000")
    assert Decimal(values["DOSSIERS_ONLINE"]["value"]) == Decimal("51000")
    assert Decimal(values["ONLINE_PS"]["value"]) == Decimal("51")  # 51,000 / 100,000 x 100, not (55.6 + 45.7) / 2
    assert sorted(values["DOSSIERS_TOTAL"]["consolidatedFrom"]) == sorted(merged["sources"])
    _ok(await gql(office, SUBMIT, s=draft, k=key()), "submitReport")

    ministry = await token_for("BNV", "reports:review")
    government = await token_for("VPCP", "reports:review")
    reader = await token_for("VPCP", "data:read indicator:DOSSIERS_TOTAL")
    # Nobody skips a level: the ministry cannot act while the committee has not approved.
    code, message = _refused(await gql(ministry, DECIDE, s=draft, d="ACCEPT", k=key()))
    assert (code, message) == (
        "FORBIDDEN",
        "the report awaits level 1 (Provincial committee approves), decided by UBND_79",
    )
    # Four eyes: the statistics office that submitted it does not approve it; another person of UBND_79 does.
    code, message = _refused(await gql(office, DECIDE, s=draft, d="ACCEPT", k=key()))
    assert (code, message) == (
        "FORBIDDEN",
        "a report is decided on by someone other than whoever submitted it (four eyes)",
    )
    office_reviewer = await token_for("UBND_79", "reports:review")
    step = _ok(await gql(office_reviewer, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")
    assert step["status"] == "SUBMITTED" and step["awaiting"] == {"position": 2, "nameEn": "Ministry accepts"}

    # The ministry returns it one level, with a reason; the committee approves again.
    step = _ok(await gql(ministry, DECIDE, s=draft, d="RETURN", why="check online share", k=key()), "reviewReport")
    assert step["status"] == "SUBMITTED" and step["awaiting"]["position"] == 1
    assert step["approvals"][-1]["reason"] == "check online share"
    # The committee's approval is back to decide: the ministry cannot act before it.
    assert _refused(await gql(ministry, DECIDE, s=draft, d="ACCEPT", k=key()))[0] == "FORBIDDEN"
    _ok(await gql(office_reviewer, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")
    step = _ok(await gql(ministry, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")
    assert step["awaiting"]["position"] == 3
    # Not current yet: only the Government Office's acceptance publishes the city's figures.
    current = _ok(await gql(reader, CURRENT, u=["79"]), "observations")["edges"]
    assert [e for e in current if e["node"]["provenance"]["submissionId"] == str(draft)] == []

    accepted = _ok(await gql(government, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")
    assert accepted["status"] == "ACCEPTED" and accepted["awaiting"] is None
    steps = [(s["level"], s["action"], s["agency"]) for s in accepted["approvals"]]
    assert steps == [
        (1, "APPROVE", "UBND_79"),
        (2, "RETURN", "BNV"),
        (1, "APPROVE", "UBND_79"),
        (2, "APPROVE", "BNV"),
        (3, "APPROVE", "VPCP"),
    ]
    assert all(s["actedAt"].endswith("+07:00") and s["actedBy"] for s in accepted["approvals"])
    (node,) = [e["node"] for e in _ok(await gql(reader, CURRENT, u=["79"]), "observations")["edges"]]
    assert Decimal(node["value"]) == Decimal("100000")
    assert node["provenance"]["submissionId"] == str(draft)
    assert sorted(node["provenance"]["consolidatedFrom"]) == sorted(str(s) for s in merged["sources"])


async def test_an_earlier_publishing_level_publishes_once_and_keeps_its_approval(gql, token_for, pool) -> None:
    admin = await token_for("VPCP", "admin")
    regime = f"UNAP_{uuid.uuid4().hex[:6].upper()}"
    chain = [
        {"nameVi": "Bộ Nội vụ", "nameEn": "Ministry", "actedBy": "AGENCY", "agency": "BNV"},
        {"nameVi": "Văn phòng Chính phủ", "nameEn": "Government Office", "actedBy": "AGENCY", "agency": "VPCP"},
    ]
    _ok(await gql(admin, UPSERT, i=_regime(regime, ["UBND_01"], "VPCP", approvalLevels=chain, publishLevel=1),
                  k=key()), "upsertRegime")  # fmt: skip
    hanoi = await token_for("UBND_01", "reports:submit")
    draft = await _report(gql, hanoi, regime, [{"indicator": "DOSSIERS_TOTAL", "value": "7000"}])
    ministry, government = await token_for("BNV", "reports:review"), await token_for("VPCP", "reports:review")

    assert _refused(await gql(ministry, DECIDE, s=draft, d="UNAPPROVE", k=key())) == (
        "CONFLICT",
        "no level has approved this report",
    )
    assert _refused(await gql(ministry, DECIDE, s=draft, d="RETURN", k=key()))[0] == "BAD_USER_INPUT"  # no reason
    # publishLevel 1: the ministry's approval publishes; after that it cannot be taken back.
    _ok(await gql(ministry, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")
    current = _ok(
        await gql(await token_for("VPCP", "data:read indicator:DOSSIERS_TOTAL"), CURRENT, u=["01"]), "observations"
    )["edges"]
    assert any(e["node"]["provenance"]["submissionId"] == str(draft) for e in current)
    code, message = _refused(await gql(ministry, DECIDE, s=draft, d="UNAPPROVE", k=key()))
    assert code == "CONFLICT" and "correctValue" in message
    # The Government Office returns it to the ministry; approving again publishes nothing twice.
    published = await pool.fetchval("SELECT count(*) FROM observation_revision WHERE submission_id = $1", draft)
    assert published == 1
    _ok(await gql(government, DECIDE, s=draft, d="RETURN", why="explain the jump", k=key()), "reviewReport")
    _ok(await gql(ministry, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")
    assert await pool.fetchval("SELECT count(*) FROM observation_revision WHERE submission_id = $1", draft) == 1
    # Returned again, the ministry sends it back to the reporter.
    _ok(await gql(government, DECIDE, s=draft, d="RETURN", why="explain the jump", k=key()), "reviewReport")
    returned = _ok(await gql(ministry, DECIDE, s=draft, d="RETURN", why="explain the jump", k=key()), "reviewReport")
    assert returned["status"] == "RETURNED"
    assert [s["action"] for s in returned["approvals"]] == ["APPROVE", "RETURN", "APPROVE", "RETURN", "RETURN"]


async def test_unapproving_hands_the_decision_back(gql, token_for) -> None:
    admin = await token_for("VPCP", "admin")
    regime = f"BACK_{uuid.uuid4().hex[:6].upper()}"
    chain = [
        {"nameVi": "Bộ Nội vụ", "nameEn": "Ministry", "actedBy": "AGENCY", "agency": "BNV"},
        {"nameVi": "Văn phòng Chính phủ", "nameEn": "Government Office", "actedBy": "AGENCY", "agency": "VPCP"},
    ]
    _ok(await gql(admin, UPSERT, i=_regime(regime, ["UBND_01"], "VPCP", approvalLevels=chain), k=key()), "upsertRegime")
    draft = await _report(gql, await token_for("UBND_01", "reports:submit"), regime,
                          [{"indicator": "DOSSIERS_TOTAL", "value": "7100"}])  # fmt: skip
    ministry, government = await token_for("BNV", "reports:review"), await token_for("VPCP", "reports:review")
    _ok(await gql(ministry, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")
    # Only the level that approved takes its approval back.
    assert _refused(await gql(government, DECIDE, s=draft, d="UNAPPROVE", k=key()))[0] == "FORBIDDEN"
    back = _ok(await gql(ministry, DECIDE, s=draft, d="UNAPPROVE", k=key()), "reviewReport")
    assert back["awaiting"]["position"] == 1
    assert _refused(await gql(government, DECIDE, s=draft, d="ACCEPT", k=key()))[0] == "FORBIDDEN"
    report = (await gql(government, REPORT, s=draft))["data"]["submission"]
    assert [s["action"] for s in report["approvals"]] == ["APPROVE", "UNAPPROVE"]
    assert report["status"] == "SUBMITTED"


async def test_one_person_approves_at_one_level_only(gql, token_for) -> None:
    admin = await token_for("VPCP", "admin")
    regime = f"TWICE_{uuid.uuid4().hex[:6].upper()}"
    chain = [
        {"nameVi": "Vụ chuyên môn", "nameEn": "Department", "actedBy": "AGENCY", "agency": "BNV"},
        {"nameVi": "Lãnh đạo Bộ", "nameEn": "Minister's office", "actedBy": "AGENCY", "agency": "BNV"},
    ]
    _ok(await gql(admin, UPSERT, i=_regime(regime, ["UBND_01"], "BNV", approvalLevels=chain), k=key()), "upsertRegime")
    draft = await _report(gql, await token_for("UBND_01", "reports:submit"), regime,
                          [{"indicator": "DOSSIERS_TOTAL", "value": "7200"}])  # fmt: skip
    department, minister = await token_for("BNV", "reports:review"), await token_for("BNV", "reports:review")
    _ok(await gql(department, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")
    assert _refused(await gql(department, DECIDE, s=draft, d="ACCEPT", k=key())) == (
        "FORBIDDEN",
        "one person approves a report at one level only (four eyes)",
    )
    assert _ok(await gql(minister, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")["status"] == "ACCEPTED"


async def test_bad_chains_are_refused(gql, token_for) -> None:
    admin = await token_for("VPCP", "admin")
    regime = f"BAD_{uuid.uuid4().hex[:6].upper()}"
    agency_without_code = [{"nameVi": "Bộ", "nameEn": "Ministry", "actedBy": "AGENCY"}]
    named_reporter = [{"nameVi": "Tỉnh", "nameEn": "Province", "actedBy": "REPORTER", "agency": "BNV"}]
    unknown = [{"nameVi": "Bộ", "nameEn": "Ministry", "actedBy": "AGENCY", "agency": "NOPE"}]
    for levels, extra, wanted in [
        (agency_without_code, {}, "level 1: an AGENCY level names its agency, and only it does"),
        (named_reporter, {}, "level 1: an AGENCY level names its agency, and only it does"),
        (unknown, {}, "an approval level names an agency that does not exist (one of NOPE)"),
        ([], {"publishLevel": 2}, "the publishing level is one of the regime's levels (1 to 1)"),
        ([], {"consolidates": regime}, f"regime {regime} cannot consolidate its own reports"),
        ([], {"consolidates": "NO_SUCH_REGIME"}, "there is no regime NO_SUCH_REGIME to consolidate"),
    ]:
        answer = await gql(admin, UPSERT, i=_regime(regime, ["UBND_01"], "VPCP", approvalLevels=levels, **extra),
                           k=key())  # fmt: skip
        assert _refused(answer)[1] == wanted, answer


EVENTS = "subscription($r: String!) { submissionEvents(regime: $r) { type submissionId status } }"
LISTED = "query($r: String!) { submissions(regime: $r) { edges { node { submissionId } } } }"


async def test_the_agencies_of_the_levels_see_the_report_and_its_events(report_hub, gql, token_for) -> None:
    admin = await token_for("VPCP", "admin")
    regime = f"SEEN_{uuid.uuid4().hex[:6].upper()}"
    chain = [
        {"nameVi": "Bộ Nội vụ", "nameEn": "Ministry", "actedBy": "AGENCY", "agency": "BNV"},
        {"nameVi": "Văn phòng Chính phủ", "nameEn": "Government Office", "actedBy": "AGENCY", "agency": "VPCP"},
    ]
    _ok(await gql(admin, UPSERT, i=_regime(regime, ["UBND_01"], "VPCP", approvalLevels=chain), k=key()), "upsertRegime")
    ministry, stranger = await token_for("BNV", "reports:review"), await token_for("UBND_79", "reports:review")
    async with connected(report_hub, ministry) as heard, connected(report_hub, stranger) as unheard:
        await start(heard, EVENTS, r=regime)
        await start(unheard, EVENTS, r=regime)
        await asyncio.sleep(0.3)  # subscriptions registered
        draft = await _report(gql, await token_for("UBND_01", "reports:submit"), regime,
                              [{"indicator": "DOSSIERS_TOTAL", "value": "7300"}])  # fmt: skip
        assert (await next_payload(heard))["data"]["submissionEvents"] == {
            "type": "submission.submitted",
            "submissionId": draft,
            "status": "SUBMITTED",
        }
        _ok(await gql(ministry, DECIDE, s=draft, d="ACCEPT", k=key()), "reviewReport")
        approved = (await next_payload(heard))["data"]["submissionEvents"]
        assert (approved["type"], approved["submissionId"]) == ("submission.approved", draft)
        assert await nothing_within(unheard, 0.5)

    # The ministry reads and lists the report it decides on; another province's committee neither.
    assert _ok(await gql(ministry, REPORT, s=draft), "submission")["approvals"][0]["agency"] == "BNV"
    listed = _ok(await gql(ministry, LISTED, r=regime), "submissions")["edges"]
    assert [e["node"]["submissionId"] for e in listed] == [draft]
    assert _refused(await gql(stranger, REPORT, s=draft))[0] == "FORBIDDEN"
    assert _ok(await gql(stranger, LISTED, r=regime), "submissions")["edges"] == []


async def test_the_database_refuses_a_decision_by_the_submitter_or_on_a_draft(gql, token_for, pool) -> None:
    """Four eyes at every level whatever a code path forgets, and the decisions never change."""
    hanoi = await token_for("UBND_01", "reports:submit")
    regime = f"DB_{uuid.uuid4().hex[:6].upper()}"
    _ok(
        await gql(await token_for("VPCP", "admin"), UPSERT, i=_regime(regime, ["UBND_01"], "VPCP"), k=key()),
        "upsertRegime",
    )
    submitted = await _report(gql, hanoi, regime, [{"indicator": "DOSSIERS_TOTAL", "value": "7400"}])
    submitter = await pool.fetchval("SELECT submitted_by FROM submission WHERE id = $1", submitted)
    insert = (
        "INSERT INTO submission_approval (submission_id, level, action, agency_code, acted_by, acted_at)"
        " VALUES ($1, 1, 'APPROVE', 'VPCP', $2, now())"
    )
    with pytest.raises(asyncpg.CheckViolationError, match="by another than its submitter"):
        await pool.execute(insert, submitted, submitter)
    await pool.execute(insert, submitted, "someone else")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute("UPDATE submission_approval SET acted_by = 'x' WHERE submission_id = $1", submitted)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute("DELETE FROM submission_approval WHERE submission_id = $1", submitted)


CHAIN_TOML = """
[[regime]]
code = "BC_XA_THU"
name_vi = "Báo cáo xã"
name_en = "Commune report"
legal_basis = "test"
issuing_agency = "VPCP"
receiving_agency = "UBND_79"
frequency = "M"
deadline = { rule = "DAYS_AFTER_CUTOFF", days = 3 }
reporters = ["UBND_XA_THU"]
items = [ { indicator = "DOSSIERS_TOTAL" } ]
levels = [ { name_vi = "UBND tỉnh", name_en = "Provincial committee", acted_by = "UNIT_ABOVE" } ]

[[regime]]
code = "BC_TINH_THU"
name_vi = "Báo cáo tỉnh"
name_en = "Province report"
legal_basis = "test"
issuing_agency = "VPCP"
receiving_agency = "VPCP"
frequency = "M"
deadline = { rule = "DAYS_AFTER_CUTOFF", days = 5 }
reporters = ["UBND_79"]
items = [ { indicator = "DOSSIERS_TOTAL" } ]
consolidates = "BC_XA_THU"
publish_level = 2
levels = [
  { name_vi = "UBND tỉnh phê duyệt", name_en = "Provincial committee approves", acted_by = "REPORTER" },
  { name_vi = "Bộ tiếp nhận", name_en = "Ministry accepts", acted_by = "AGENCY", agency = "BNV" },
  { name_vi = "Văn phòng Chính phủ", name_en = "Government Office", acted_by = "AGENCY", agency = "VPCP" },
]
"""


async def test_regimes_import_writes_the_chain_and_refuses_a_bad_one(clone_demo, nrhub, tmp_path) -> None:
    url = await clone_demo()
    conn = await asyncpg.connect(url)
    try:
        commune = await conn.fetchval(
            "SELECT c.code FROM admin_unit c JOIN admin_unit p ON p.id = c.parent_id"
            " WHERE p.code = '79' AND c.valid_to IS NULL ORDER BY c.code LIMIT 1"
        )
        added = await nrhub("agencies", "create", "--code", "UBND_XA_THU", "--name-vi", "UBND xã thử",
                            "--name-en", "Test commune", "--kind", "COMMUNE_COMMITTEE", "--unit", commune,
                            database_url=url)  # fmt: skip
        assert added.stdout == "agency UBND_XA_THU (COMMUNE_COMMITTEE) created\n", added
        file = tmp_path / "chain.toml"
        file.write_text(CHAIN_TOML, encoding="utf-8")
        imported = await nrhub("regimes", "import", str(file), database_url=url)
        assert imported.returncode == 0, imported.stderr
        levels = await conn.fetch(
            "SELECT level, acted_by, agency_code FROM regime_level WHERE regime_code = 'BC_TINH_THU' ORDER BY level"
        )
        assert [tuple(r) for r in levels] == [(1, "REPORTER", None), (2, "AGENCY", "BNV"), (3, "AGENCY", "VPCP")]
        regime = await conn.fetchrow("SELECT publish_level, consolidates FROM regime WHERE code = 'BC_TINH_THU'")
        assert tuple(regime) == (2, "BC_XA_THU")
        audited = await conn.fetchval(
            "SELECT after->'levels' FROM audit_entry WHERE subject = 'regime:BC_TINH_THU' ORDER BY seq DESC LIMIT 1"
        )
        assert '"BNV"' in audited

        file.write_text(CHAIN_TOML.replace('acted_by = "UNIT_ABOVE"', 'acted_by = "MAYOR"'), encoding="utf-8")
        refused = await nrhub("regimes", "import", str(file), database_url=url)
        assert refused.returncode == 2
        assert "level 1: acted by REPORTER, UNIT_ABOVE or AGENCY, not MAYOR" in refused.stderr
        assert await conn.fetchval("SELECT acted_by FROM regime_level WHERE regime_code = 'BC_XA_THU'") == "UNIT_ABOVE"
    finally:
        await conn.close()
