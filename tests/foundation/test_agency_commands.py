"""``nrhub agencies create`` and ``list``: an agency added without SQL, audited, and every mistake refused
in one line with nothing added. Run as an operator runs them, on a database of their own."""

from __future__ import annotations

import json
import re

import asyncpg
import pytest

from nrhub.resolvers.agencies import AgencyKind
from tests.conftest import CliRun, run_nrhub


@pytest.fixture(scope="module")
async def agencies_url(new_reference_database) -> str:
    """Reference data only (provinces, agencies, indicators); this module adds agencies to it."""
    return await new_reference_database()


def one_line(run: CliRun) -> str:
    assert run.returncode == 1 and run.stdout == "" and "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nrhub: error: "), run.stderr
    return lines[0]


async def test_agency_kinds_are_the_ones_the_database_allows(agencies_url: str) -> None:
    conn = await asyncpg.connect(agencies_url)
    try:
        check = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'agency_kind_check'"
        )
    finally:
        await conn.close()
    assert set(re.findall(r"'([A-Z_]+)'::text", check)) == {k.value for k in AgencyKind}


async def test_an_agency_is_created_listed_audited_and_can_register_clients(agencies_url: str) -> None:
    created = await run_nrhub(
        "agencies", "create", "--code", "TCTK_TEST", "--name-vi", "Cục Thống kê thử", "--name-en", "Test statistics",
        "--kind", "MINISTERIAL_AGENCY", "--short-code", "TCTK", "--valid-from", "2026-01-01",
        database_url=agencies_url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "agency TCTK_TEST (MINISTERIAL_AGENCY) created"

    listed = await run_nrhub("agencies", "list", "--json", "--kind", "MINISTERIAL_AGENCY", database_url=agencies_url)
    mine = [a for a in json.loads(listed.stdout) if a["code"] == "TCTK_TEST"]
    assert mine == [
        {
            "code": "TCTK_TEST",
            "short_code": "TCTK",
            "name_vi": "Cục Thống kê thử",
            "name_en": "Test statistics",
            "kind": "MINISTERIAL_AGENCY",
            "valid_from": "2026-01-01",
            "valid_to": None,
            "notes": None,
        }
    ]
    assert {a["kind"] for a in json.loads(listed.stdout)} == {"MINISTERIAL_AGENCY"}
    text = await run_nrhub("agencies", "list", database_url=agencies_url)
    assert "TCTK_TEST\tMINISTERIAL_AGENCY\tTCTK\tTest statistics\tCục Thống kê thử" in text.stdout.splitlines()

    # Audited, and the catalogue sealed again: verify passes with the new row in it.
    conn = await asyncpg.connect(agencies_url)
    try:
        subjects = await conn.fetch("SELECT action, subject FROM audit_entry ORDER BY seq DESC LIMIT 2")
    finally:
        await conn.close()
    assert [(r["action"], r["subject"]) for r in subjects] == [
        ("catalogue.seal", "nrhub agencies create TCTK_TEST"),
        ("catalogue.agency", "agency TCTK_TEST"),
    ]
    verified = await run_nrhub("audit", "verify", database_url=agencies_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    client = await run_nrhub(
        "clients", "create", "--agency", "TCTK_TEST", "--scope", "data:read", database_url=agencies_url
    )
    assert client.returncode == 0, client.stderr


async def test_a_provincial_committee_reports_for_a_province_that_has_none(agencies_url: str) -> None:
    conn = await asyncpg.connect(agencies_url)
    try:
        # Free a province of its committee, as if the demo had not made one for it.
        await conn.execute("DELETE FROM agency WHERE code = 'UBND_01'")
    finally:
        await conn.close()
    made = await run_nrhub(
        "agencies", "create", "--code", "UBND_HN", "--name-vi", "UBND Hà Nội", "--name-en", "Ha Noi committee",
        "--kind", "PROVINCIAL_COMMITTEE", "--province", "01", database_url=agencies_url,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = await run_nrhub("agencies", "list", "--json", "--kind", "PROVINCIAL_COMMITTEE", database_url=agencies_url)
    assert "UBND_HN" in {a["code"] for a in json.loads(listed.stdout)}


NAMES = ("--name-vi", "Thử", "--name-en", "Test")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--code", "BTC", *NAMES), "agency BTC exists already; nothing was added"),
        (("--code", "lower", *NAMES), "agency lower: a code is 2-32 characters"),
        (("--code", "NONAME", "--name-vi", "", "--name-en", "x"), "agency NONAME: the Vietnamese name is empty"),
        (("--code", "UBND_ZZ", *NAMES, "--kind", "PROVINCIAL_COMMITTEE", "--province", "99"), "no current province 99"),
        (("--code", "UBND_ZZ", *NAMES, "--kind", "PROVINCIAL_COMMITTEE", "--province", "79"), "agency UBND_79"),
        (("--code", "UBND_ZZ", *NAMES, "--kind", "PROVINCIAL_COMMITTEE"), "names the province it reports for"),
        (("--code", "PARTNER_X", *NAMES, "--province", "79"), "only a committee reports for a unit"),
        (("--code", "UBND_X", *NAMES, "--kind", "COMMUNE_COMMITTEE", "--unit", "79"), "no current commune 79"),
        (("--code", "UBND_X", *NAMES, "--kind", "COMMUNE_COMMITTEE"), "names the commune it reports for"),
    ],
)
async def test_a_mistake_is_one_line_and_adds_nothing(agencies_url: str, args: tuple[str, ...], message: str) -> None:
    conn = await asyncpg.connect(agencies_url)
    try:
        before = await conn.fetchval("SELECT (SELECT count(*) FROM agency) + (SELECT count(*) FROM audit_entry)")
        refused = await run_nrhub("agencies", "create", *args, database_url=agencies_url)
        line = one_line(refused)
        assert message in line, line
        after = await conn.fetchval("SELECT (SELECT count(*) FROM agency) + (SELECT count(*) FROM audit_entry)")
    finally:
        await conn.close()
    assert after == before


async def test_a_malformed_day_or_kind_is_refused_by_the_parser(agencies_url: str) -> None:
    for bad in (("--valid-from", "2026-13-01"), ("--kind", "CLUB")):
        refused = await run_nrhub("agencies", "create", "--code", "BAD_DAY", *NAMES, *bad, database_url=agencies_url)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr and bad[1] in refused.stderr
