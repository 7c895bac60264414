"""The migration runner against real, empty databases."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hub.migrate import (
    MIGRATION_LOCK_KEY,
    MigrationError,
    discover_migrations,
    migrate,
    pending_migrations,
)
from tests.foundation.conftest import NRHUB, hub_env, run_nrhub

FILES = [m.filename for m in discover_migrations()]
DOMAIN_TABLES = {
    "admin_unit",
    "unit_lineage",
    "agency",
    "agency_lineage",
    "indicator_field",
    "dimension",
    "dimension_value",
    "indicator",
    "indicator_dimension",
    "observation_revision",
    "observation_current",
    "observation_latest",
    "regime",
    "regime_reporter",
    "regime_item",
    "submission",
    "submission_value",
    "audit_entry",
    "schema_migration",
}
_TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"


def test_the_package_ships_numbered_migrations_without_gaps():
    assert FILES[:4] == [
        "0001_catalogue.sql",
        "0002_observations.sql",
        "0003_reporting.sql",
        "0004_audit.sql",
    ]
    assert [m.version for m in discover_migrations()] == list(range(1, len(FILES) + 1))


async def test_migrations_apply_to_an_empty_database_and_then_do_nothing(new_database):
    conn = await asyncpg.connect(await new_database())
    try:
        assert await conn.fetchval("SELECT count(*) FROM (" + _TABLES + ") t") == 0
        assert await pending_migrations(conn) == FILES

        assert await migrate(conn) == FILES

        assert DOMAIN_TABLES <= {r["table_name"] for r in await conn.fetch(_TABLES)}
        ledger = await conn.fetch("SELECT version, name, checksum FROM schema_migration ORDER BY version")
        assert [(r["version"], r["name"], r["checksum"]) for r in ledger] == [
            (m.version, m.name, m.checksum) for m in discover_migrations()
        ]
        assert await pending_migrations(conn) == []
        assert await migrate(conn) == []
        assert await conn.fetchval("SELECT count(*) FROM schema_migration") == len(FILES)
    finally:
        await conn.close()


async def test_pending_migrations_lists_the_files_not_yet_recorded(migrated_url):
    conn = await asyncpg.connect(migrated_url)
    try:
        await conn.execute("DELETE FROM schema_migration WHERE version >= 3")
        assert await pending_migrations(conn) == FILES[2:]
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused_by_name(migrated_url, one_line_error):
    conn = await asyncpg.connect(migrated_url)
    try:
        await conn.execute("UPDATE schema_migration SET checksum = 'edited' WHERE version = 2")
        with pytest.raises(MigrationError, match=r"0002_observations\.sql"):
            await migrate(conn)
        with pytest.raises(MigrationError, match=r"0002_observations\.sql"):
            await pending_migrations(conn)
        # The refusal released the lock: the next runner is not kept waiting.
        other = await asyncpg.connect(migrated_url)
        try:
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_KEY)
        finally:
            await other.close()
    finally:
        await conn.close()

    for command in ("migrate", "status"):
        result = run_nrhub(command, env=hub_env(HUB_DATABASE_URL=migrated_url))
        one_line_error(result, "0002_observations.sql", "edited")


async def test_three_processes_migrating_at_once_leave_one_set_of_tables(new_database):
    url = await new_database()
    env = hub_env(HUB_DATABASE_URL=url)
    processes = [
        await asyncio.create_subprocess_exec(
            str(NRHUB),
            "migrate",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), 60)

    assert [p.returncode for p in processes] == [0, 0, 0], [err.decode() for _, err in outputs]
    reports = sorted(out.decode().strip() for out, _ in outputs)
    # The lock serialised them: one applied everything, the others found nothing left to do.
    assert reports == [
        f"{len(FILES)} migration(s) applied",
        "database is up to date",
        "database is up to date",
    ]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migration") == len(FILES)
        assert DOMAIN_TABLES <= {r["table_name"] for r in await conn.fetch(_TABLES)}
    finally:
        await conn.close()
