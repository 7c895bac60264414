"""The migration runner: numbered SQL files applied in order, once, under a lock.

Each file in the ``migrations`` package named ``NNNN_name.sql`` runs in its own transaction and is
recorded in ``schema_migration`` with its SHA-256. Re-running applies only new files; an applied file
whose text changed is refused, because the database no longer matches what the file says.

Files in ``migrations/functions/`` are the other kind: the current definition of a set of functions
(``CREATE OR REPLACE``), which changes in place instead of through a new numbered file that copies
it. After the numbered files, each runs (in its own transaction) whenever its SHA-256 differs from
the one recorded in ``schema_function``, or a numbered file was applied in the same run (which may
have replaced what it defines); so a new database and an upgraded one end with the same functions.

Processes are serialised with a session advisory lock taken by polling ``pg_try_advisory_lock``:
a blocking ``pg_advisory_lock`` waits inside a transaction-less session that ``CREATE INDEX
CONCURRENTLY`` in another session would then wait on, a deadlock PostgreSQL cannot see.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass
from importlib import resources

import asyncpg

from nrhub.auth.operator_errors import OperatorError

# Any constant works; this one spells "nrhub" so it is recognisable in pg_locks.
MIGRATION_LOCK_KEY = 0x6E72687562
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_FUNCTIONS_NAME = re.compile(r"^([a-z0-9_]+)\.sql$")
_FUNCTIONS_DIR = "functions"

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migration (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_SELECT_APPLIED = "SELECT version, name, checksum FROM schema_migration ORDER BY version"
_INSERT_APPLIED = "INSERT INTO schema_migration (version, name, checksum) VALUES ($1, $2, $3)"
_LEDGER_EXISTS = "SELECT to_regclass('schema_migration') IS NOT NULL"
_CREATE_FUNCTION_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_function (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_SELECT_FUNCTIONS = "SELECT name, checksum FROM schema_function"
_UPSERT_FUNCTIONS = """
INSERT INTO schema_function (name, checksum) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()
"""
_FUNCTION_LEDGER_EXISTS = "SELECT to_regclass('schema_function') IS NOT NULL"


class MigrationError(OperatorError):
    """The migrations cannot be applied; the message names the file."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int | None  # None: a file of migrations/functions/, applied again whenever it changes
    name: str
    sql: str

    @property
    def filename(self) -> str:
        if self.version is None:
            return f"{_FUNCTIONS_DIR}/{self.name}.sql"
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover_migrations() -> list[Migration]:
    """The migration files shipped in the ``migrations`` package, in the order they are applied:
    the numbered ones, then those of ``migrations/functions/`` by name."""
    package = resources.files("nrhub.migrations")
    found = []
    for entry in package.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version or 0)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    functions = package.joinpath(_FUNCTIONS_DIR)
    if not functions.is_dir():  # a package built without them would silently keep old functions
        raise MigrationError(f"the migrations package has no {_FUNCTIONS_DIR}/ folder")
    for entry in sorted(functions.iterdir(), key=lambda e: e.name):
        match = _FUNCTIONS_NAME.match(entry.name)
        if match:
            found.append(Migration(None, match[1], entry.read_text(encoding="utf-8")))
    return found


async def migrate(conn: asyncpg.Connection, *, lock_timeout: float = 60.0) -> list[str]:
    """Apply every pending migration; return the file names applied (empty when current)."""
    migrations = discover_migrations()
    await _acquire_lock(conn, lock_timeout)
    try:
        try:
            await conn.execute(_CREATE_LEDGER)
            await conn.execute(_CREATE_FUNCTION_LEDGER)
        except asyncpg.PostgresError as exc:  # e.g. a role without CREATE on the schema
            raise MigrationError(f"cannot create the migration ledger tables: {exc}") from exc
        applied = {r["version"]: r for r in await conn.fetch(_SELECT_APPLIED)}
        _check_unchanged(migrations, applied)
        functions = {r["name"]: r["checksum"] for r in await conn.fetch(_SELECT_FUNCTIONS)}
        done = []
        for migration in _to_apply(migrations, applied, functions):
            async with conn.transaction():
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"{migration.filename} failed: {exc}") from exc
                if migration.version is None:
                    await conn.execute(_UPSERT_FUNCTIONS, migration.name, migration.checksum)
                else:
                    await conn.execute(_INSERT_APPLIED, migration.version, migration.name, migration.checksum)
            done.append(migration.filename)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """File names not yet applied; raises MigrationError when an applied file was edited."""
    migrations = discover_migrations()
    applied = {}
    if await conn.fetchval(_LEDGER_EXISTS):
        applied = {r["version"]: r for r in await conn.fetch(_SELECT_APPLIED)}
    _check_unchanged(migrations, applied)
    functions: dict[str, str] = {}
    if await conn.fetchval(_FUNCTION_LEDGER_EXISTS):
        functions = {r["name"]: r["checksum"] for r in await conn.fetch(_SELECT_FUNCTIONS)}
    return [m.filename for m in _to_apply(migrations, applied, functions)]


def _to_apply(
    migrations: list[Migration], applied: dict[int, asyncpg.Record], functions: dict[str, str]
) -> list[Migration]:
    """The numbered files not applied yet; then the function files that changed, or all of them
    when a numbered file is to be applied (it may drop or replace a function they define)."""
    numbered = [m for m in migrations if m.version is not None and m.version not in applied]
    changed = [m for m in migrations if m.version is None and (numbered or functions.get(m.name) != m.checksum)]
    return numbered + changed


def _check_unchanged(migrations: list[Migration], applied: dict[int, asyncpg.Record]) -> None:
    for migration in migrations:
        record = applied.get(migration.version) if migration.version is not None else None
        if record is not None and record["checksum"] != migration.checksum:
            raise MigrationError(
                f"migration {migration.filename} was edited after it was applied "
                "(its checksum differs); add a new migration instead"
            )


async def _acquire_lock(conn: asyncpg.Connection, wait_at_most: float) -> None:
    deadline = time.monotonic() + wait_at_most
    delay = 0.02
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_KEY):
        if time.monotonic() > deadline:
            raise MigrationError(f"another process held the migration lock for {wait_at_most:.0f} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
