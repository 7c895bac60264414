"""``nrhub audit verify`` proves what is served, not only the chain.

The API reads observation_current and observation_latest. Verify recomputes both from the append-only
revisions and names any row that differs (edited, inserted, deleted), and names every revision that no
audit entry covers: a figure that changed without it showing in the audit trail.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from nrhub.auth.principal import Grants
from nrhub.config.settings import Settings
from nrhub.db.pools import create_pool
from nrhub.resolvers.granted import Granted
from nrhub.resolvers.scope import resolve_scope
from tests.trust.conftest import Seeded, failed_naming, nrhub


async def _owner(seeded: Seeded, statement: str, *args: object) -> str:
    conn = await asyncpg.connect(seeded.url)  # the owner: a superuser in the tests
    try:
        return await conn.execute(statement, *args)
    finally:
        await conn.close()


async def test_an_untouched_database_with_a_correction_verifies(seeded: Seeded) -> None:
    async with asyncio.timeout(60):
        run = await nrhub("audit", "verify", database_url=seeded.url)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("audit chain verifies: ") and run.stderr == ""


async def test_an_edited_current_value_is_named(seeded: Seeded) -> None:
    async with asyncio.timeout(60):
        (_, unit), period = seeded.units[0], seeded.periods[1]
        edited = await _owner(
            seeded, "UPDATE observation_current SET value = 999 WHERE revision_id = $1", seeded.second
        )
        assert edited == "UPDATE 1"
        line = failed_naming(await nrhub("audit", "verify", database_url=seeded.url), "observation_current",
                             seeded.indicator, f"unit {unit}", period)  # fmt: skip
        assert "999" in line
        # Put back, it verifies again: the check compares, it does not remember.
        await _owner(seeded, "UPDATE observation_current SET value = 200 WHERE revision_id = $1", seeded.second)
        assert (await nrhub("audit", "verify", database_url=seeded.url)).returncode == 0


async def test_an_edited_latest_value_is_named(seeded: Seeded) -> None:
    async with asyncio.timeout(60):
        (_, unit), period = seeded.units[0], seeded.periods[1]
        edited = await _owner(seeded, "UPDATE observation_latest SET value = 1 WHERE revision_id = $1", seeded.second)
        assert edited == "UPDATE 1"
        failed_naming(await nrhub("audit", "verify", database_url=seeded.url), "observation_latest",
                      seeded.indicator, f"unit {unit}", period)  # fmt: skip


async def test_a_deleted_current_row_is_named(seeded: Seeded) -> None:
    async with asyncio.timeout(60):
        (_, unit), period = seeded.units[1], seeded.periods[0]
        deleted = await _owner(seeded, "DELETE FROM observation_current WHERE revision_id = $1", seeded.other)
        assert deleted == "DELETE 1"
        failed_naming(await nrhub("audit", "verify", database_url=seeded.url), "observation_current",
                      seeded.indicator, f"unit {unit}", period, f"revision {seeded.other}")  # fmt: skip


async def test_a_current_row_without_a_current_revision_is_named(seeded: Seeded) -> None:
    """A figure served for a key the revisions do not have, pointing at a superseded revision."""
    async with asyncio.timeout(60):
        (unit_id, unit) = seeded.units[1]
        inserted = await _owner(
            seeded,
            "INSERT INTO observation_current (indicator_code, unit_id, period, dims, value, status, revision_id, source)"
            " VALUES ($1, $2, $3, '', 42, 'OFFICIAL', $4, 'trust-test')",
            seeded.indicator,
            unit_id,
            seeded.periods[1],
            seeded.first,
        )
        assert inserted == "INSERT 0 1"
        failed_naming(await nrhub("audit", "verify", database_url=seeded.url), "observation_current",
                      seeded.indicator, f"unit {unit}", seeded.periods[1])  # fmt: skip


_UNAUDITED = """
INSERT INTO observation_revision (indicator_code, unit_id, period, dims, value, status, source, recorded_by,
                                  previous_id, reason)
SELECT indicator_code, unit_id, period, dims, 1000, status, source, 'nobody', id, 'looks better'
FROM observation_revision WHERE id = $1 RETURNING id
"""


@pytest.mark.parametrize("who", ["owner", "request role"])
async def test_an_unaudited_revision_is_named(seeded: Seeded, who: str) -> None:
    """A revision inserted without its audit entry is served (the trigger keeps the served tables) yet shows."""
    async with asyncio.timeout(60):
        if who == "owner":
            conn = await asyncpg.connect(seeded.url)
            try:
                revision = await conn.fetchval(_UNAUDITED, seeded.second)
            finally:
                await conn.close()
        else:  # the hub's own request pool, as a resolver with an injected statement would use it
            pool = await create_pool(Settings(pool_min_size=1, pool_max_size=1), seeded.url)
            try:
                scope = await resolve_scope(pool, Grants(frozenset({seeded.indicator}), None))
                revision = await Granted(pool, scope).fetchval(_UNAUDITED, seeded.second)
            finally:
                await pool.close()
        conn = await asyncpg.connect(seeded.url)
        try:
            served = await conn.fetchval("SELECT value FROM observation_current WHERE revision_id = $1", revision)
        finally:
            await conn.close()
        assert served == 1000  # the forged figure is what the API would serve
        line = failed_naming(await nrhub("audit", "verify", database_url=seeded.url), f"observation_revision {revision}",
                             seeded.indicator)  # fmt: skip
        assert "no audit entry" in line
