"""A real hub with a clock the tests set, and tokens for agencies' clients through the real OAuth path."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
import uvicorn

from auth.clients import create_client
from hub.app import create_app
from hub.demo.load import load_demo
from hub.migrate import migrate
from hub.settings import Settings


@pytest.fixture(scope="session")
async def database_url(new_database) -> str:
    """Reports change data: they get a demo database of their own, so read tests see the pristine one."""
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


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
async def report_hub(database_url: str, clock: Clock) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(port=port, graphiql=False, issuer=f"http://127.0.0.1:{port}", token_rate_limit=10_000)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, database_url, clock=clock), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    sock.close()


TokenFor = Callable[[str, str], Awaitable[str]]


@pytest.fixture(scope="session")
async def token_for(report_hub: str, pool) -> TokenFor:
    """A bearer token of a new client of ``agency`` granted ``scopes``."""

    async def issue(agency: str, scopes: str) -> str:
        async with pool.acquire() as conn:
            client, secret = await create_client(conn, agency=agency, scopes=scopes.split())
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{report_hub}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, secret or ""),
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    return issue


Gql = Callable[..., Awaitable[dict]]


@pytest.fixture(scope="session")
def gql(report_hub: str) -> Gql:
    async def call(token: str, query: str, **variables: object) -> dict:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{report_hub}/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
        return dict(response.json())

    return call
