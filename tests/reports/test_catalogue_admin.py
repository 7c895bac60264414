"""The catalogue's audited way in (issue 16): `nrhub catalogue import` and `seal`, on private copies
of the demo database, through the real command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg

FILE = """
[[indicator]]
code = "CPI_YOY"
sensitivity = "RESTRICTED"
source_note = "reclassified by the statistics office (test)"

[[unit]]
code = "79"
valid_from = 2025-07-01
name_en = "Ho Chi Minh City (renamed in a test)"

[[dimension_value]]
dimension = "SEX"
code = "X"
name_vi = "Khác"
name_en = "Other"
"""


async def test_an_import_changes_audits_and_seals(clone_demo, nrhub, tmp_path: Path) -> None:
    url = await clone_demo()
    file = tmp_path / "catalogue.toml"
    file.write_text(FILE, encoding="utf-8")
    run = await nrhub("catalogue", "import", str(file), database_url=url)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "changed indicator CPI_YOY",
        "changed unit 79@2025-07-01",
        "changed dimension value SEX=X",
    ]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT sensitivity FROM indicator WHERE code = 'CPI_YOY'") == "RESTRICTED"
        entries = await conn.fetch("SELECT action, subject, before, after FROM audit_entry ORDER BY seq DESC LIMIT 4")
    finally:
        await conn.close()
    actions = [(e["action"], e["subject"]) for e in reversed(entries)]
    assert actions == [
        ("catalogue.indicator", "indicator CPI_YOY"),
        ("catalogue.admin_unit", "unit 79@2025-07-01"),
        ("catalogue.dimension_value", "dimension_value SEX=X"),
        ("catalogue.seal", str(file)),
    ]
    assert json.loads(entries[3]["after"]) == {
        "sensitivity": "RESTRICTED",
        "source_note": "reclassified by the statistics office (test)",
    }
    # Importing the same file again changes nothing (and says so).
    again = await nrhub("catalogue", "import", str(file), database_url=url)
    assert again.returncode == 0 and again.stdout.splitlines() == ["no change"]


async def test_a_bad_file_imports_nothing(clone_demo, nrhub, tmp_path: Path) -> None:
    url = await clone_demo()
    conn = await asyncpg.connect(url)
    try:
        entries = await conn.fetchval("SELECT count(*) FROM audit_entry")
    finally:
        await conn.close()
    cases = {
        '[[indicator]]\ncode = "CPI_YOY"\nsensitivity = "SECRET"\n': "indicator CPI_YOY",
        '[[indicator]]\ncode = "NO_SUCH"\nsensitivity = "PUBLIC"\n': "there is no indicator NO_SUCH",
        '[[indicator]]\ncode = "CPI_YOY"\nsearch_text = "x"\n': "cannot set search_text",
        '[[unit]]\ncode = "79"\nname_en = "x"\n': "needs valid_from",
        '[[dimension_value]]\ndimension = "SEX"\ncode = "Q"\n': "give name_vi and name_en",
        "[[regime]]\n": "unknown table regime",
        "not toml = [": "is not valid TOML",
    }
    for text, said in cases.items():
        file = tmp_path / "bad.toml"
        file.write_text(f'[[indicator]]\ncode = "GDP_GROWTH"\nsource_note = "first, then refused"\n{text}')
        run = await nrhub("catalogue", "import", str(file), database_url=url)
        assert run.returncode == 1 and run.stderr.startswith("nrhub: error: "), (text, run.stderr)
        assert said in run.stderr and len(run.stderr.splitlines()) == 1, (text, run.stderr)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM audit_entry") == entries
        assert (
            await conn.fetchval("SELECT source_note FROM indicator WHERE code = 'GDP_GROWTH'") != "first, then refused"
        )
    finally:
        await conn.close()


async def test_seal_names_what_changed_by_hand(clone_demo, nrhub) -> None:
    url = await clone_demo()
    assert (await nrhub("catalogue", "seal", database_url=url)).returncode == 0
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE indicator SET source_note = 'edited by hand' WHERE code = 'TRAINED_LAB'")
    finally:
        await conn.close()
    run = await nrhub("catalogue", "seal", database_url=url)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[1:] == ["  since the last seal: indicator TRAINED_LAB (changed)"]


async def test_verify_names_a_catalogue_row_changed_since_its_seal(clone_demo, nrhub) -> None:
    """An indicator made PUBLIC by SQL fails `audit verify` until an operator seals it (which shows)."""
    url = await clone_demo()
    assert (await nrhub("catalogue", "seal", database_url=url)).returncode == 0
    verified = await nrhub("audit", "verify", database_url=url)
    assert verified.returncode == 0 and "the catalogue matches its seal" in verified.stdout, verified.stderr
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE indicator SET source = 'elsewhere' WHERE code = 'POVERTY'")
        await conn.execute("DELETE FROM dimension_value WHERE dimension_code = 'SEX' AND code = 'F'")
    except asyncpg.ForeignKeyViolationError:
        pass  # a value in use cannot go; the indicator's change is enough
    finally:
        await conn.close()
    failed = await nrhub("audit", "verify", database_url=url)
    assert failed.returncode == 1, failed.stdout
    assert "the catalogue differs from its seal" in failed.stderr and "indicator POVERTY (changed)" in failed.stderr
    assert (await nrhub("catalogue", "seal", database_url=url)).returncode == 0
    assert (await nrhub("audit", "verify", database_url=url)).returncode == 0
