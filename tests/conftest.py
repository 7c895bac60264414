"""Shared fixtures: one real PostgreSQL per test session, migrated and loaded with the demo set.

The server is the one named by HUB_TEST_DATABASE_URL (an administrator's URL; a fresh database is
created on it per session), or else the embedded server under .hub-data/test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from nrhub.db.embedded import embedded_server
from nrhub.db.migrate import migrate
from nrhub.demo.load import load_demo
from nrhub.demo.reference import load_reference

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


def server_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 for a test's uvicorn server, on a free port.

    Made with IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    without it every answer on a kept-alive connection waits about 40 ms for the client's delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serving_hub(
    database_url: str,
    *,
    authenticate: Callable[..., Awaitable[Any]] | None = None,
    clock: Callable[[], datetime] | None = None,
    **settings: Any,
) -> AsyncIterator[str]:
    """A real hub on 127.0.0.1, served by uvicorn in this event loop; its base URL while it runs.

    ``settings`` override the defaults (no GraphiQL, no reminder scheduler; the issuer is the server's own
    address, pass ``issuer`` to run a replica of another hub). Served as `nrhub serve` serves (nrhub.web.server): the
    same timeouts, connection cap and shutdown, and uvicorn does not rewrite the peer from
    X-Forwarded-For; the hub alone decides whose it believes (HUB_TRUSTED_PROXIES).
    """
    import uvicorn

    from nrhub.config.settings import Settings
    from nrhub.web.app import create_app
    from nrhub.web.server import server_config

    sock = server_socket()
    port = sock.getsockname()[1]
    # Reminders off unless a test turns them on: a clock set by one test must not send another's subscribers
    # reminders (tests/reports/test_webhooks.py turns them on).
    values: dict[str, Any] = {
        "graphiql": False, "port": port, "issuer": f"http://127.0.0.1:{port}", "reminders": False, **settings
    }  # fmt: skip
    hub_settings = Settings(**values)
    app = create_app(hub_settings, database_url, authenticate=authenticate, clock=clock)
    # uvicorn's own Server, not nrhub serve's HubServer: a Ctrl-C during the tests must still stop pytest.
    server = uvicorn.Server(server_config(app, hub_settings, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped the server
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str


async def run_nrhub(*args: str, database_url: str, seconds: float = 60) -> CliRun:
    """The real ``nrhub`` command line against a database (HUB_DATABASE_URL), as an operator runs it,
    bounded in time; no other HUB_* variable of the test's environment reaches it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nrhub.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return CliRun(process.returncode, out.decode(), err.decode())


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
def new_demo_database(new_database) -> object:
    """A factory of databases migrated and loaded with the small demo set (dropped with the session)."""
    return _migrated(new_database, lambda conn: load_demo(conn, scale="small"))


@pytest.fixture(scope="session")
def new_reference_database(new_database) -> object:
    """A factory of databases migrated and holding the reference data (units, agencies, indicators) only."""
    return _migrated(new_database, load_reference)


def _migrated(new_database, load) -> object:
    async def make() -> str:
        url = await new_database()
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            await load(conn)
        finally:
            await conn.close()
        return url

    return make


@pytest.fixture(scope="session")
async def database_url(new_demo_database) -> str:
    """A demo database shared by the session."""
    return await new_demo_database()


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def all_indicators(pool) -> frozenset[str]:
    return frozenset(await pool.fetchval("SELECT array_agg(code) FROM indicator"))


@pytest.fixture(scope="session")
async def hub_url(database_url: str, all_indicators: frozenset[str]) -> AsyncIterator[str]:
    """A real hub on 127.0.0.1 (uvicorn in this event loop), principals chosen by test headers."""
    from nrhub.auth.principal import Grants, Principal

    async def authenticate(request) -> Principal:
        wanted = request.headers.get("x-test-indicators")
        regions = request.headers.get("x-test-regions")
        indicators = all_indicators if wanted is None else frozenset(filter(None, wanted.split(",")))
        grants = Grants(indicators, frozenset(regions.split(",")) if regions else None)
        # catalog:read: introspection is on here, and answered only to holders of it (the HTTP audit asks __type).
        return Principal(grants=grants, scopes=frozenset({"catalog:read", "data:read"}))

    async with serving_hub(database_url, authenticate=authenticate, introspection=True) as url:
        yield url
