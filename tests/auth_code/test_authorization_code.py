"""People sign in: authorization code with PKCE (S256 only), refresh rotation, and every refusal."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest

from nrhub.auth.clients import create_client
from nrhub.auth.users import create_user
from tests.auth_code.conftest import PASSWORD, REDIRECT, authorize_params, exchange, pkce, redirected, sign_in


@pytest.fixture(scope="module")
async def people(pool) -> dict[str, str]:
    """A browser (public) client, and a person of BTC granted the labour field."""
    async with pool.acquire() as conn:
        client, _ = await create_client(
            conn,
            agency="BTC",
            scopes=["data:read", "field:labour", "field:growth"],
            redirect_uris=[REDIRECT],
            public=True,
        )
        name = f"analyst{secrets.token_hex(3)}@btc"
        await create_user(conn, username=name, password=PASSWORD, agency="BTC", scopes=["data:read", "field:labour"])
    return {"client_id": client.client_id, "username": name}


async def test_sign_in_page_lists_the_scopes_and_sets_a_strict_policy(oauth_hub: str, people) -> None:
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{oauth_hub}/oauth/authorize", params=authorize_params(people, pkce()[1]))
    assert page.status_code == 200
    assert "field:labour" in page.text and 'name="password"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_full_flow_gives_a_token_for_the_person(oauth_hub: str, people, pool) -> None:
    verifier, challenge = pkce()
    back = redirected(await sign_in(oauth_hub, people, challenge))
    assert back["state"] == "xyz" and back["iss"] == oauth_hub
    token = await exchange(oauth_hub, people, back["code"], verifier)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"] and body["scope"] == "data:read field:labour"
    async with httpx.AsyncClient() as client:
        me = await client.post(
            f"{oauth_hub}/graphql",
            json={"query": "{ me { user clientId indicators agency { code } } }"},
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
    labour = sorted(await pool.fetchval("SELECT array_agg(code) FROM indicator WHERE field = 'labour'"))
    assert me.json()["data"]["me"] == {
        "user": people["username"],
        "clientId": people["client_id"],
        "indicators": labour,
        "agency": {"code": "BTC"},
    }


async def test_refresh_rotates_and_reuse_revokes_the_family(oauth_hub: str, people) -> None:
    verifier, challenge = pkce()
    first = (
        await exchange(oauth_hub, people, redirected(await sign_in(oauth_hub, people, challenge))["code"], verifier)
    ).json()

    async def refresh(token: str) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(
                f"{oauth_hub}/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": token, "client_id": people["client_id"]},
            )

    second = await refresh(first["refresh_token"])
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    reused = await refresh(first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # The reuse revoked the family: the newest refresh token is dead too.
    assert (await refresh(second.json()["refresh_token"])).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("method", [None, "plain"])
async def test_missing_or_plain_challenge_is_refused(oauth_hub: str, people, method: str | None) -> None:
    params = authorize_params(people, None)
    if method:
        params |= {"code_challenge": "a" * 43, "code_challenge_method": method}
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{oauth_hub}/oauth/authorize", params=params)
    assert redirected(response)["error"] == "invalid_request"


async def test_wrong_verifier_is_refused(oauth_hub: str, people) -> None:
    _, challenge = pkce()
    code = redirected(await sign_in(oauth_hub, people, challenge))["code"]
    response = await exchange(oauth_hub, people, code, pkce()[0])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "variant",
    [
        REDIRECT + "/",
        "http://127.0.0.1:10/callback",
        "http://LOCALHOST:9/callback",
        REDIRECT + "?x=1",
        "HTTP://127.0.0.1:9/callback",
        "http://127.0.0.1:9/Callback",
        "https://evil.example/callback",
    ],
)
async def test_any_redirect_uri_variant_is_refused_without_redirecting(oauth_hub: str, people, variant: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{oauth_hub}/oauth/authorize", params=authorize_params(people, pkce()[1], redirect_uri=variant)
        )
    assert response.status_code == 400 and "location" not in response.headers


async def test_redirect_uri_must_match_at_the_token_endpoint(oauth_hub: str, people) -> None:
    verifier, challenge = pkce()
    code = redirected(await sign_in(oauth_hub, people, challenge))["code"]
    response = await exchange(oauth_hub, people, code, verifier, redirect=REDIRECT + "/")
    assert response.json()["error"] == "invalid_grant"


async def test_concurrent_code_replay_gives_exactly_one_token(oauth_hub: str, people) -> None:
    verifier, challenge = pkce()
    code = redirected(await sign_in(oauth_hub, people, challenge))["code"]
    results = await asyncio.gather(*(exchange(oauth_hub, people, code, verifier) for _ in range(20)))
    assert sorted(r.status_code for r in results) == [200] + [400] * 19


async def test_wrong_password_deny_and_excess_scope(oauth_hub: str, people) -> None:
    challenge = pkce()[1]
    wrong = await sign_in(oauth_hub, people, challenge, password="not the password at all")
    assert wrong.status_code == 401 and "wrong" in wrong.text
    assert redirected(await sign_in(oauth_hub, people, challenge, decision="deny"))["error"] == "access_denied"
    # The client may ask for field:growth, but this person is not granted it.
    beyond = await sign_in(oauth_hub, people, challenge, scope="data:read field:growth")
    assert redirected(beyond)["error"] == "invalid_scope"
