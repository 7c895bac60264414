"""The token endpoint and the token's life: RFC 6749 client credentials, RFC 9068 JWTs, rate limit,
revocation (RFC 7009), introspection (RFC 7662), disabled clients and key rotation."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path

import asyncpg
import httpx

from nrhub.auth.clients import create_client, disable_client
from nrhub.auth.keys import rotate_key
from tests.auth.conftest import Registered, hub_connection, request_token, serving

NRHUB = Path(sys.executable).with_name("nrhub")
CODES_QUERY = "{ indicators(first: 100) { edges { node { code } } } }"


def segments(token: str) -> tuple[dict, dict]:
    """The header and claims of a compact JWS, read without verifying it."""
    header, claims, _ = token.split(".")
    return tuple(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in (header, claims))


async def readable_codes(hub: str, token: str) -> list[str]:
    """The indicators /graphql lists for this bearer token (asserting it was accepted)."""
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{hub}/graphql", json={"query": CODES_QUERY}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text
    return sorted(e["node"]["code"] for e in response.json()["data"]["indicators"]["edges"])


async def graphql_status(hub: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{hub}/graphql", json={"query": CODES_QUERY}, headers={"Authorization": f"Bearer {token}"}
        )


async def introspect(hub: str, client: Registered, token: str) -> dict:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{hub}/oauth/introspect", data={"token": token}, auth=(client.client_id, client.secret)
        )
    assert response.status_code == 200, response.text
    return response.json()


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge


async def test_basic_and_post_authentication_give_rfc9068_access_tokens(real_hub: str, register) -> None:
    client = await register("data:read indicator:RETAIL indicator:UNEMP")
    basic = await request_token(real_hub, client, "data:read indicator:RETAIL")
    async with httpx.AsyncClient() as http:
        post = await http.post(
            f"{real_hub}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": client.secret,
            },
        )
        jwks = (await http.get(f"{real_hub}/.well-known/jwks.json")).json()
    for response, scope in ((basic, "data:read indicator:RETAIL"), (post, None)):
        assert response.status_code == 200, response.text
        # RFC 6749 section 5.1: the token response is never cached.
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        header, claims = segments(body["access_token"])
        assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
        assert header["kid"] in {k["kid"] for k in jwks["keys"]}
        assert claims["iss"] == real_hub
        assert claims["aud"] == f"{real_hub}/graphql" != client.client_id
        assert claims["sub"] == claims["client_id"] == client.client_id
        expected_scope = scope or "data:read indicator:RETAIL indicator:UNEMP"
        assert sorted(claims["scope"].split()) == sorted(expected_scope.split())
        assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
        assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)
        assert 0 < claims["exp"] - claims["iat"] <= 3600
        assert abs(claims["iat"] - time.time()) < 60
        assert body["expires_in"] == claims["exp"] - claims["iat"]
    assert segments(basic.json()["access_token"])[1]["jti"] != segments(post.json()["access_token"])[1]["jti"]
    # The narrower token reads exactly what it names; the full one the client's whole grant.
    assert await readable_codes(real_hub, basic.json()["access_token"]) == ["RETAIL"]
    assert await readable_codes(real_hub, post.json()["access_token"]) == ["RETAIL", "UNEMP"]


async def test_scope_beyond_the_clients_grant_is_invalid_scope(real_hub: str, register) -> None:
    client = await register("data:read indicator:RETAIL")
    response = await request_token(real_hub, client, "data:read indicator:RETAIL indicator:UNEMP")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert "access_token" not in response.json()


async def test_unknown_client_and_wrong_secret_fail_alike(real_hub: str, register) -> None:
    client = await register("data:read indicator:RETAIL")
    wrong_secret = await request_token(real_hub, Registered(client.client_id, client.secret + "x"))
    unknown = await request_token(real_hub, Registered("cl_doesnotexist42", client.secret))
    for response in (wrong_secret, unknown):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert "www-authenticate" in response.headers
    assert wrong_secret.json() == unknown.json()
    assert wrong_secret.headers["www-authenticate"] == unknown.headers["www-authenticate"]


async def test_repeated_parameters_are_refused(real_hub: str, register) -> None:
    client = await register("data:read indicator:RETAIL indicator:UNEMP")
    bodies = (
        "grant_type=client_credentials&scope=data%3Aread&scope=indicator%3AUNEMP",
        "grant_type=client_credentials&grant_type=client_credentials",
        f"grant_type=client_credentials&client_id={client.client_id}&client_id={client.client_id}"
        f"&client_secret={client.secret}",
    )
    async with httpx.AsyncClient() as http:
        for body in bodies:
            # RFC 6749 section 3.2: request parameters must not be included more than once.
            response = await http.post(
                f"{real_hub}/oauth/token",
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                auth=None if "client_secret" in body else (client.client_id, client.secret),
            )
            assert response.status_code == 400, body
            assert response.json()["error"] == "invalid_request"
            assert "access_token" not in response.json()


async def _wait_for_fresh_window(margin: float = 6.0) -> None:
    """The limiter counts in fixed minutes; start a burst well inside one."""
    into = time.time() % 60
    if into > 60 - margin:
        await asyncio.sleep(60 - into + 0.2)


async def test_rate_limit_gives_429_with_retry_after(fresh_database: str, register) -> None:
    db = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    try:
        first = await register("data:read field:labour", database=db)
        second = await register("data:read field:labour", database=db)
    finally:
        await db.close()
    async with serving(fresh_database, token_rate_limit=3) as hub:
        await _wait_for_fresh_window()
        statuses = [(await request_token(hub, first)).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        refused = await request_token(hub, first)
        assert refused.status_code == 429
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 61
        assert "access_token" not in refused.json()
        # Per address too: another client from the same address is refused in the same window,
        # and so is an unknown client id (counted before the secret is checked).
        assert (await request_token(hub, second)).status_code == 429
        assert (await request_token(hub, Registered("cl_unknownclient1", "x"))).status_code == 429


async def test_strangers_failures_do_not_lock_a_client_out(fresh_database: str, register) -> None:
    db = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    try:
        client = await register("data:read field:labour", database=db)
    finally:
        await db.close()
    async with serving(fresh_database, token_rate_limit=3) as hub:
        await _wait_for_fresh_window()
        # Anyone who knows the client id can fail in its name, from addresses of their own.
        for source in ("127.0.4.1", "127.0.4.2"):
            transport = httpx.AsyncHTTPTransport(local_address=source)
            async with httpx.AsyncClient(transport=transport) as stranger:
                statuses = [
                    (
                        await stranger.post(
                            f"{hub}/oauth/token",
                            data={"grant_type": "client_credentials"},
                            auth=(client.client_id, "a guessed secret"),
                        )
                    ).status_code
                    for _ in range(5)
                ]
            assert statuses == [401, 401, 401, 429, 429]
        # The client itself, presenting its secret, still gets its tokens.
        assert [(await request_token(hub, client)).status_code for _ in range(3)] == [200, 200, 200]


async def test_a_forwarded_address_from_an_untrusted_peer_is_not_believed(fresh_database: str) -> None:
    async with serving(fresh_database, token_rate_limit=3) as hub, httpx.AsyncClient() as http:
        await _wait_for_fresh_window()
        statuses = [
            (
                await http.post(
                    f"{hub}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(f"cl_guess{n}", "x"),
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},  # a new address each time, made up
                )
            ).status_code
            for n in range(5)
        ]
    assert statuses == [401, 401, 401, 429, 429]


async def test_introspection_and_revocation_are_limited_per_address(fresh_database: str) -> None:
    """They check client secrets too (an scrypt hash each), so they cannot be an unlimited way around."""
    async with serving(fresh_database, token_rate_limit=3) as hub, httpx.AsyncClient() as http:
        await _wait_for_fresh_window()
        statuses = [
            (await http.post(f"{hub}/oauth/{endpoint}", data={"token": "x"}, auth=("cl_guess", "x"))).status_code
            for endpoint in ("introspect", "revoke", "introspect", "revoke")
        ]
    assert statuses == [401, 401, 401, 429]


async def test_revoked_token_is_refused_and_inactive(real_hub: str, register) -> None:
    client = await register("data:read indicator:RETAIL")
    other = await register("data:read indicator:RETAIL")
    token = (await request_token(real_hub, client)).json()["access_token"]
    assert await readable_codes(real_hub, token) == ["RETAIL"]
    active = await introspect(real_hub, client, token)
    assert active["active"] is True
    assert active["client_id"] == client.client_id and active["scope"] == "data:read indicator:RETAIL"
    async with httpx.AsyncClient() as http:
        # RFC 7009 section 2.1: a client may revoke only its own tokens (and still gets 200).
        foreign = await http.post(
            f"{real_hub}/oauth/revoke", data={"token": token}, auth=(other.client_id, other.secret)
        )
        assert foreign.status_code == 200
        assert (await introspect(real_hub, client, token))["active"] is True
        revoked = await http.post(
            f"{real_hub}/oauth/revoke", data={"token": token}, auth=(client.client_id, client.secret)
        )
    assert revoked.status_code == 200
    assert_invalid_token(await graphql_status(real_hub, token))
    assert await introspect(real_hub, client, token) == {"active": False}
    assert await introspect(real_hub, other, token) == {"active": False}


async def test_disabled_clients_token_is_refused(real_hub: str, register, pool) -> None:
    client = await register("data:read indicator:UNEMP")
    witness = await register("data:read indicator:UNEMP")
    token = (await request_token(real_hub, client)).json()["access_token"]
    assert await readable_codes(real_hub, token) == ["UNEMP"]
    async with pool.acquire() as conn:
        await disable_client(conn, client.client_id)
    assert_invalid_token(await graphql_status(real_hub, token))
    assert (await introspect(real_hub, witness, token))["active"] is False
    refused = await request_token(real_hub, client)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def _nrhub_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = database_url
    return env


async def nrhub(database_url: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(NRHUB),
        *args,
        env=_nrhub_env(database_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_cli_registered_client_gets_a_token(real_hub: str, database_url: str, pool) -> None:
    printed = await nrhub(
        database_url, "clients", "create", "--agency", "BTC", "--scope", "data:read field:labour", "--json"
    )
    created = json.loads(printed)
    assert set(created) == {"client_id", "client_secret"}
    client = Registered(created["client_id"], created["client_secret"])
    token = (await request_token(real_hub, client)).json()["access_token"]
    assert segments(token)[1]["client_id"] == client.client_id
    labour = await pool.fetchval("SELECT array_agg(code ORDER BY code) FROM indicator WHERE field = 'labour'")
    assert len(labour) >= 2
    assert await readable_codes(real_hub, token) == labour
    assert client.client_id in await nrhub(database_url, "clients", "list")


async def test_tokens_signed_before_and_after_key_rotation_both_verify(
    real_hub: str, database_url: str, register
) -> None:
    client = await register("data:read indicator:RETAIL")
    before = (await request_token(real_hub, client)).json()["access_token"]
    printed = await nrhub(database_url, "keys", "rotate")
    new_kid = printed.strip().rsplit(" ", 1)[-1]
    assert new_kid != segments(before)[0]["kid"]
    after = (await request_token(real_hub, client)).json()["access_token"]
    for token in (before, after):
        assert await readable_codes(real_hub, token) == ["RETAIL"]
    # A hub process started after the rotation signs with the new key and still verifies old tokens.
    async with serving(database_url, issuer=real_hub) as replica:
        fresh = (await request_token(replica, client)).json()["access_token"]
        assert segments(fresh)[0]["kid"] == new_kid
        for token in (before, after, fresh):
            assert await readable_codes(replica, token) == ["RETAIL"]
        async with httpx.AsyncClient() as http:
            published = {k["kid"] for k in (await http.get(f"{replica}/.well-known/jwks.json")).json()["keys"]}
    assert {segments(before)[0]["kid"], new_kid} <= published


async def test_a_hub_process_that_has_not_reloaded_verifies_a_token_of_the_new_key(database_url: str, register) -> None:
    """An unknown kid reloads the keys once (issue 4): a rotation made elsewhere never breaks a token."""
    client = await register("data:read indicator:RETAIL")
    async with serving(database_url) as hub, httpx.AsyncClient() as http:
        await http.get(f"{hub}/.well-known/jwks.json")  # this process has loaded the keys
        async with hub_connection(database_url) as conn:
            new_kid = await rotate_key(conn, 900)
        async with serving(database_url, issuer=hub) as replica:
            token = (await request_token(replica, client)).json()["access_token"]
        assert segments(token)[0]["kid"] == new_kid
        response = await graphql_status(hub, token)
        assert response.status_code == 200, response.text
        assert [e["node"]["code"] for e in response.json()["data"]["indicators"]["edges"]] == ["RETAIL"]


async def test_concurrent_first_requests_make_one_key_that_outlives_its_tokens(fresh_database: str) -> None:
    async with hub_connection(fresh_database) as conn:
        client, secret = await create_client(conn, agency="BTC", scopes=["data:read"])
    registered = Registered(client.client_id, secret or "")
    async with serving(fresh_database) as hub, httpx.AsyncClient() as http:
        results = await asyncio.gather(
            *(http.get(f"{hub}/.well-known/jwks.json") for _ in range(8)),
            *(request_token(hub, registered) for _ in range(4)),
        )
    tokens = [r.json()["access_token"] for r in results[8:]]
    async with hub_connection(fresh_database) as conn:
        rows = await conn.fetch("SELECT kid, extract(epoch FROM published_until) AS until FROM signing_key")
    until = {r["kid"]: r["until"] for r in rows}
    for token in tokens:
        header, claims = segments(token)
        # The key that signed a token stays published (JWKS, verification) until the token expires.
        assert until[header["kid"]] is None or until[header["kid"]] >= claims["exp"]
    assert len(until) == 1, f"{len(until)} keys made on first start"
