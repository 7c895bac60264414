"""Fixtures and steps for people signing in: a hub of its own per module, PKCE, the sign-in form, and the
token endpoint's code and refresh grants. ``reach`` (tests/auth) is what the resource server makes of a token."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from nrhub.auth.clients import create_client
from nrhub.auth.users import create_user
from tests.conftest import serving_hub

REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "a long enough passphrase"
LABOUR = "data:read field:labour"


@pytest.fixture(scope="module")
async def oauth_hub(database_url: str) -> AsyncIterator[str]:
    # The token endpoint's per-address counters are shared by every module's hub on 127.0.0.1.
    async with serving_hub(database_url, token_rate_limit=10_000) as url:
        yield url


@pytest.fixture(scope="module", autouse=True)
async def forget_sign_in_counts(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Sign-in failures are counted per address in PostgreSQL; one module's must not lock out the next's."""
    yield
    await pool.execute("DELETE FROM rate_limit WHERE bucket LIKE 'signin:%'")


async def register_person(
    pool: asyncpg.Pool, *, client_scopes: str, person_scopes: str, agency: str = "BTC"
) -> dict[str, str]:
    """A browser (public) client and a person, registered as ``nrhub clients/users create`` do."""
    async with pool.acquire() as conn:
        client, _ = await create_client(
            conn, agency=agency, scopes=client_scopes.split(), redirect_uris=[REDIRECT], public=True
        )
        name = f"person{secrets.token_hex(4)}@hub"
        await create_user(conn, username=name, password=PASSWORD, agency=agency, scopes=person_scopes.split())
    return {"client_id": client.client_id, "username": name}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize_params(people: dict[str, str], challenge: str | None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": people["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "data:read field:labour",
        "state": "xyz",
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params | extra


async def sign_in(
    url: str, people: dict[str, str], challenge: str, *, source: str | None = None, **overrides: str
) -> httpx.Response:
    """POST the sign-in form; ``source`` is the local address to send from (any of 127.0.0.0/8)."""
    form = (
        authorize_params(people, challenge)
        | {"username": people["username"], "password": PASSWORD, "decision": "allow"}
        | overrides
    )
    headers = {"X-Forwarded-For": f"198.51.100.{secrets.randbelow(250)}"}  # never believed from a peer
    transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.post(f"{url}/oauth/authorize", data=form, headers=headers)


def redirected(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def exchange(
    url: str, people: dict[str, str], code: str, verifier: str, redirect: str = REDIRECT
) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{url}/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect,
                "client_id": people["client_id"],
            },
        )


async def signed_in(url: str, people: dict[str, str], **overrides: str) -> dict:
    """The token response of a whole sign-in: form, redirect, code exchange."""
    verifier, challenge = pkce()
    code = redirected(await sign_in(url, people, challenge, **overrides))["code"]
    response = await exchange(url, people, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(url: str, people: dict[str, str], token: str, scope: str | None = None) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": people["client_id"]}
    async with httpx.AsyncClient() as client:
        return await client.post(f"{url}/oauth/token", data=form | ({"scope": scope} if scope is not None else {}))


async def fresh_window(seconds: int, margin: float = 8.0) -> None:
    """Counters are kept in fixed windows; start a burst well inside one."""
    into = time.time() % seconds
    if into > seconds - margin:
        await asyncio.sleep(seconds - into + 0.2)
