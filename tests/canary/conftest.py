"""A real hub on a fresh demo database of this module's own, with canaries planted (tests/canary/serving.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.canary.serving import CONTROL, MINISTRY, RESTRICTED, REVIEWER, Hub, plant, serving, token


@pytest.fixture(scope="module")
async def canary_hub(new_demo_database) -> AsyncIterator[Hub]:
    """A fresh demo database of this module's own (the canaries change it), with canaries, served."""
    database_url = await new_demo_database()
    conn = await asyncpg.connect(database_url)
    try:
        await plant(conn)
        async with serving(database_url) as url:
            tokens = {c.name: await token(url, conn, c) for c in (*RESTRICTED, CONTROL, MINISTRY, REVIEWER)}
            hub = Hub(url, tokens)
            await hub.report_canaries("2026-Q4")
            yield hub
    finally:
        await conn.close()
