"""The watch that cuts off revoked tokens' WebSockets outlives a check that fails.

In the hour's soak one check met asyncpg's InternalClientError right after a PostgreSQL restart, the
watch task ended with it, and from then on no revoked token or disabled client was cut off (the hub
said so only when it stopped: "Application shutdown failed"). Here a connection whose close fails
(as a socket going away can) ends one check the same way; the next check must still run.
"""

from __future__ import annotations

import asyncio

from nrhub.auth.clients import create_client
from nrhub.auth.principal import Principal
from nrhub.web.ws import Connections


async def test_a_failed_check_does_not_end_the_watch(pool) -> None:
    closed: list[tuple[str, int]] = []

    async def breaks(code: int, reason: str) -> None:
        raise RuntimeError("the socket went away while closing")

    async def closes(code: int, reason: str) -> None:
        closed.append(("second", code))

    async with pool.acquire() as conn:
        first, _ = await create_client(conn, agency="UBND_79", scopes=["data:read"])
        second, _ = await create_client(conn, agency="UBND_01", scopes=["data:read"])
        await conn.execute("UPDATE oauth_client SET disabled = true WHERE client_id = $1", first.client_id)
    connections = Connections(pool, per_client=5, anonymous=5, check_every=0.05)
    connections.add("first", Principal(client_id=first.client_id, token_id="jti-first"), "127.0.0.1", breaks)
    connections.start()
    try:
        await asyncio.sleep(0.5)  # several checks, each failing at the first connection's close
        connections.remove("first")
        connections.add("second", Principal(client_id=second.client_id, token_id="jti-second"), "127.0.0.1", closes)
        async with pool.acquire() as conn:
            await conn.execute("UPDATE oauth_client SET disabled = true WHERE client_id = $1", second.client_id)
        async with asyncio.timeout(5):
            while not closed:
                await asyncio.sleep(0.05)
        assert closed == [("second", 4403)]
    finally:
        await connections.stop()
