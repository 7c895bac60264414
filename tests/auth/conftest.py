"""Fixtures for the OAuth tests: the real bearer path, on real uvicorn servers and real PostgreSQL.

``real_hub`` is the hub as an operator runs it (no test authenticator): tokens come from its
``/oauth/token`` and are verified by its resource server. It keeps the default token rate limit
(30 requests a minute per address), so tests ask for few tokens and share them; the rate limit
itself is tested on an app of its own with a database of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from nrhub.auth.clients import create_client
from nrhub.db.pools import connect
from tests.conftest import serving_hub


@dataclass(frozen=True, slots=True)
class Registered:
    """A confidential client as its developer holds it: an id and the secret shown once."""

    client_id: str
    secret: str


@contextlib.asynccontextmanager
async def serving(database_url: str, **overrides: object) -> AsyncIterator[str]:
    """A hub as an operator runs it, with introspection on (tests/conftest.py ``serving_hub``)."""
    async with serving_hub(database_url, **{"introspection": True, **overrides}) as url:
        yield url


@contextlib.asynccontextmanager
async def hub_connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection with the hub's codecs (jsonb), as ``nrhub`` opens it: what rotate_key expects."""
    conn = await connect(url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def real_hub(database_url: str) -> AsyncIterator[str]:
    """The hub with its real OAuth server and resource server, on the demo database."""
    async with serving(database_url) as url:
        yield url


@pytest.fixture(scope="module", autouse=True)
async def forget_token_counts(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Every hub on the demo database counts token requests from 127.0.0.1 in one shared per-address
    bucket (rate_limit, in PostgreSQL). Clear it after each module, so that one module's tokens do not
    use up the next module's (or another test directory's) 30 requests a minute."""
    yield
    await pool.execute("DELETE FROM rate_limit WHERE bucket LIKE 'token:%'")


@pytest.fixture(scope="session")
def register(pool: asyncpg.Pool) -> Callable[..., Awaitable[Registered]]:
    """Register a confidential client the way ``nrhub clients create`` does."""

    async def make(scopes: str, *, agency: str = "BTC", database: asyncpg.Pool | None = None) -> Registered:
        async with (database or pool).acquire() as conn:
            client, secret = await create_client(conn, agency=agency, scopes=scopes.split())
        assert secret is not None
        return Registered(client.client_id, secret)

    return make


async def request_token(hub: str, client: Registered, scope: str | None = None) -> httpx.Response:
    """Client credentials with client_secret_basic (RFC 6749 section 4.4)."""
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope is not None else {})}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{hub}/oauth/token", data=form, auth=(client.client_id, client.secret))


@pytest.fixture(scope="session")
def token_for(real_hub: str) -> Callable[..., Awaitable[str]]:
    """An access token from the real hub's token endpoint (asserting it was issued)."""

    async def fetch(client: Registered, scope: str | None = None, *, hub: str | None = None) -> str:
        response = await request_token(hub or real_hub, client, scope)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    return fetch


@pytest.fixture
async def fresh_database(new_reference_database) -> str:
    """A database of its own: migrated, reference data (units, agencies, indicators), no keys, no clients."""
    return await new_reference_database()


# The values of one labour indicator for every province in one quarter, and the caller's regions.
REACH = """{
  me { regions }
  observations(indicators: ["UNEMP"], parent: "VN", level: PROVINCE, from: "2026-Q3", to: "2026-Q3",
               disaggregation: "", first: 100) { edges { node { unit { code } } } }
}"""


async def ask_reach(hub: str, access_token: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{hub}/graphql", json={"query": REACH}, headers={"Authorization": f"Bearer {access_token}"}
        )


async def reach(hub: str, access_token: str) -> tuple[list[str] | None, set[str]]:
    """A token's regions as the resource server sees them (None: every region), and the provinces
    whose values it read."""
    response = await ask_reach(hub, access_token)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["observations"] is not None, response.json()
    return data["me"]["regions"], {e["node"]["unit"]["code"] for e in data["observations"]["edges"]}
