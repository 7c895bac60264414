"""The migration runner against real, empty databases."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from nrhub.db.migrate import (
    MIGRATION_LOCK_KEY,
    MigrationError,
    discover_migrations,
    migrate,
    pending_migrations,
)
from tests.foundation.conftest import NRHUB, hub_env, run_nrhub

FILES = [m.filename for m in discover_migrations()]
NUMBERED = [m for m in discover_migrations() if m.version is not None]
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
    assert [m.version for m in NUMBERED] == list(range(1, len(NUMBERED) + 1))
    # Then the re-appliable definitions, after every numbered file.
    assert FILES[len(NUMBERED) :] == ["functions/aggregation.sql"]


async def test_migrations_apply_to_an_empty_database_and_then_do_nothing(new_database):
    conn = await asyncpg.connect(await new_database())
    try:
        assert await conn.fetchval("SELECT count(*) FROM (" + _TABLES + ") t") == 0
        assert await pending_migrations(conn) == FILES

        assert await migrate(conn) == FILES

        assert DOMAIN_TABLES <= {r["table_name"] for r in await conn.fetch(_TABLES)}
        ledger = await conn.fetch("SELECT version, name, checksum FROM schema_migration ORDER BY version")
        assert [(r["version"], r["name"], r["checksum"]) for r in ledger] == [
            (m.version, m.name, m.checksum) for m in NUMBERED
        ]
        assert await pending_migrations(conn) == []
        assert await migrate(conn) == []
        assert await conn.fetchval("SELECT count(*) FROM schema_migration") == len(NUMBERED)
    finally:
        await conn.close()


async def test_pending_migrations_lists_the_files_not_yet_recorded(migrated_url):
    conn = await asyncpg.connect(migrated_url)
    try:
        await conn.execute("DELETE FROM schema_migration WHERE version >= 3")
        # A numbered file to apply may replace functions: the function files run again after it.
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
        assert await conn.fetchval("SELECT count(*) FROM schema_migration") == len(NUMBERED)
        assert DOMAIN_TABLES <= {r["table_name"] for r in await conn.fetch(_TABLES)}
    finally:
        await conn.close()


# --- migrations/functions/: the current definition of the aggregation functions

# Everything about a function that CREATE OR REPLACE could change or lose.
_FUNCTIONS = """
SELECT p.oid::regprocedure::text AS name, pg_get_functiondef(p.oid) AS definition, p.prosecdef,
       p.proconfig, p.proacl::text[] AS acl, pg_get_userbyid(p.proowner) AS owner
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proname = ANY($1::text[]) ORDER BY 1
"""
AGGREGATION_FUNCTIONS = [
    "period_end",
    "subperiods",
    "status_rank",
    "status_of_rank",
    "part_units",
    "aggregate_additive",
    "aggregate_observation",
]


async def functions_of(conn: asyncpg.Connection) -> list[dict[str, object]]:
    return [dict(r) for r in await conn.fetch(_FUNCTIONS, AGGREGATION_FUNCTIONS)]


async def as_the_previous_runner_left_it(url: str) -> None:
    """Every numbered migration applied and recorded, as the runner did before function files."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migration (version integer PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in NUMBERED:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migration (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
    finally:
        await conn.close()


async def test_an_existing_database_gets_the_functions_a_new_one_has(new_database, migrated_url):
    existing = await new_database()
    await as_the_previous_runner_left_it(existing)
    conn = await asyncpg.connect(existing)
    fresh = await asyncpg.connect(migrated_url)
    try:
        before = await functions_of(conn)
        assert await pending_migrations(conn) == ["functions/aggregation.sql"]
        assert await migrate(conn) == ["functions/aggregation.sql"]
        after = await functions_of(conn)
        assert after == await functions_of(fresh)
        assert after != before  # the file changed something (AVERAGE is rounded), so the check can fail
        by_name = {f["name"].split("(")[0]: f for f in after}
        for name in ("aggregate_additive", "aggregate_observation"):
            function = by_name[name]
            # Still what migration 0013 made of them: run as the owner, a pinned search path, callable
            # by the request role and not by PUBLIC.
            assert function["prosecdef"]
            assert function["proconfig"] == ["search_path=pg_catalog, public, pg_temp"]
            assert any(entry.startswith("nrhub_app=X/") for entry in function["acl"])
            assert not any(entry.startswith("=") for entry in function["acl"])
        assert await pending_migrations(conn) == []
        assert await migrate(conn) == []
    finally:
        await conn.close()
        await fresh.close()


async def test_a_changed_function_file_is_applied_again(migrated_url):
    conn = await asyncpg.connect(migrated_url)
    try:
        before = await functions_of(conn)
        # As if the database had an older version of the file: its recorded checksum differs.
        await conn.execute("UPDATE schema_function SET checksum = 'older' WHERE name = 'aggregation'")
        await conn.execute("ALTER FUNCTION aggregate_observation(text, integer, text, text, text[]) SECURITY INVOKER")
        assert await pending_migrations(conn) == ["functions/aggregation.sql"]
        assert await migrate(conn) == ["functions/aggregation.sql"]
        assert await functions_of(conn) == before
        assert await conn.fetchval("SELECT checksum FROM schema_function WHERE name = 'aggregation'") == next(
            m.checksum for m in discover_migrations() if m.version is None
        )
    finally:
        await conn.close()
