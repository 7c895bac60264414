"""``nrhub users list`` and ``nrhub users disable``, run as an operator runs them, against a real hub.

A disabled person cannot sign in, their refresh token is refused, their access token stops working at
once, and every sign-in of theirs is revoked in the database (so re-enabling them by hand would not
revive an old session).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.auth_code.conftest import LABOUR, PASSWORD, pkce, refresh, register_person, sign_in, signed_in
from tests.conftest import run_nrhub, serving_hub


@pytest.fixture(scope="module")
async def sign_in_hub(database_url: str) -> AsyncIterator[str]:
    # Token requests from 127.0.0.1 share one counter with every other module's hub.
    async with serving_hub(database_url, token_rate_limit=10_000) as url:
        yield url


async def _me(hub: str, access_token: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{hub}/graphql", json={"query": "{ me { user } }"}, headers={"Authorization": f"Bearer {access_token}"}
        )


async def test_users_list_shows_people_without_password_hashes(database_url: str, pool: asyncpg.Pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=LABOUR, agency="BYT")
    listed = await run_nrhub("users", "list", "--json", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    mine = [u for u in json.loads(listed.stdout) if u["username"] == people["username"]]
    assert len(mine) == 1
    assert mine[0]["agency"] == "BYT" and mine[0]["scopes"] == LABOUR.split() and mine[0]["disabled"] is False
    assert mine[0]["created_at"][:4].isdigit()
    text = await run_nrhub("users", "list", database_url=database_url)
    line = next(line for line in text.stdout.splitlines() if line.startswith(people["username"] + "\t"))
    assert line.split("\t")[1:3] == ["BYT", "active"] and line.endswith("\tdata:read field:labour")
    stored = await pool.fetchval("SELECT password_hash FROM hub_user WHERE username = $1", people["username"])
    for output in (listed.stdout, text.stdout):
        assert stored not in output and "scrypt" not in output and "password" not in output


async def test_a_disabled_person_is_signed_out_everywhere(sign_in_hub: str, database_url: str, pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=LABOUR)
    first, second = await signed_in(sign_in_hub, people), await signed_in(sign_in_hub, people)
    assert (await _me(sign_in_hub, first["access_token"])).json()["data"]["me"]["user"] == people["username"]

    done = await run_nrhub("users", "disable", people["username"], database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"user {people['username']} disabled; 2 sign-in(s) revoked"

    # Both sign-ins' families are revoked, with the access tokens issued beside them.
    live = await pool.fetchval(
        "SELECT count(*) FROM refresh_token WHERE username = $1 AND revoked_at IS NULL", people["username"]
    )
    assert live == 0
    for body in (first, second):
        refused = await refresh(sign_in_hub, people, body["refresh_token"])
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
        assert (await _me(sign_in_hub, body["access_token"])).status_code == 401
    # And the person cannot sign in again.
    again = await sign_in(sign_in_hub, people, pkce()[1], password=PASSWORD)
    assert again.status_code == 401 and "location" not in again.headers

    listed = json.loads((await run_nrhub("users", "list", "--json", database_url=database_url)).stdout)
    assert next(u for u in listed if u["username"] == people["username"])["disabled"] is True
    entry = await pool.fetchrow(
        "SELECT after::text AS after FROM audit_entry WHERE action = 'user.disable' AND subject = $1",
        f"user:{people['username']}",
    )
    assert entry is not None and json.loads(entry["after"])["sign_ins_revoked"] == 2


async def test_disabling_twice_or_someone_unknown(database_url: str, pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=LABOUR)
    assert (await run_nrhub("users", "disable", people["username"], database_url=database_url)).returncode == 0
    twice = await run_nrhub("users", "disable", people["username"], database_url=database_url)
    assert twice.returncode == 0 and "0 sign-in(s) revoked" in twice.stdout
    unknown = await run_nrhub("users", "disable", "nobody.here", database_url=database_url)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.splitlines() == ["nrhub: error: there is no user nobody.here"]
