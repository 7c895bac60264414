"""Shared fixtures: one real PostgreSQL per test session, migrated and loaded with the demo set.

The server is the one named by HUB_TEST_DATABASE_URL (an administrator's URL; a fresh database is
created on it per session), or else the embedded server under .hub-data/test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from hub.demo.load import load_demo
from hub.embedded import embedded_server
from hub.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """An administrator's URL on the test server (embedded unless HUB_TEST_DATABASE_URL is set)."""
    configured = os.environ.get("HUB_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with embedded_server(ROOT / ".hub-data" / "test") as url:
        yield url


def url_for_database(admin_url: str, name: str) -> str:
    head, _, query = admin_url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def new_database(admin_url: str) -> Iterator[object]:
    """A factory of empty databases on the test server, dropped at the end of the session."""
    created: list[str] = []

    async def make() -> str:
        name = f"hub_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return url_for_database(admin_url, name)

    yield make

    import asyncio

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            for name in created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="session")
async def database_url(new_database) -> str:
    """A database migrated and loaded with the small demo set, shared by the session."""
    url = await new_database()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await load_demo(conn, scale="small")
    finally:
        await conn.close()
    return url


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()
