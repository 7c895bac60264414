"""Bearer tokens an attacker (or a careless client) might send: each is refused with 401 and an
RFC 6750 challenge before GraphQL runs. Forged tokens are signed with the hub's real private key
(read from signing_key), so each differs from a genuine token in exactly one property."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from nrhub.auth.clients import disable_client
from tests.auth.conftest import Registered

QUERY = "{ indicators(first: 100) { edges { node { code } } } }"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decoded(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class Forger:
    """Re-signs a genuine token's header and claims, with the changes a case asks for."""

    def __init__(self, genuine: str, private: ECKey) -> None:
        header, claims, _ = genuine.split(".")
        self.header, self.claims, self.private = decoded(header), decoded(claims), private

    def sign(self, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None, key=None) -> str:
        now = int(time.time())
        fields = {**self.claims, "jti": secrets.token_urlsafe(16), "iat": now, "nbf": now, "exp": now + 600}
        head = {**self.header, **(header or {})}
        body = {**fields, **(claims or {})}
        head = {k: v for k, v in head.items() if v is not None}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(head, body, key or self.private, algorithms=[head["alg"]])

    def unsigned(self) -> str:
        """alg none (RFC 7519 section 6): header and claims, no signature."""
        now = int(time.time())
        claims = {**self.claims, "jti": secrets.token_urlsafe(16), "iat": now, "nbf": now, "exp": now + 600}
        head = {"alg": "none", "typ": "at+jwt"}
        return f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}."

    def hmac_with_public_key(self) -> str:
        """The algorithm-confusion attack: HS256 keyed with the published EC public key's bytes."""
        now = int(time.time())
        claims = {**self.claims, "jti": secrets.token_urlsafe(16), "iat": now, "nbf": now, "exp": now + 600}
        head = {**self.header, "alg": "HS256"}
        signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
        public_pem = self.private.as_pem(private=False)
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(signature)}"


@pytest.fixture(scope="module")
async def reader(register) -> Registered:
    return await register("data:read indicator:RETAIL")


@pytest.fixture(scope="module")
async def genuine(token_for, reader: Registered) -> str:
    return await token_for(reader)


@pytest.fixture(scope="module")
async def forger(genuine: str, pool) -> Forger:
    kid = decoded(genuine.split(".")[0])["kid"]
    private = await pool.fetchval("SELECT private_jwk::text FROM signing_key WHERE kid = $1", kid)
    return Forger(genuine, ECKey.import_key(json.loads(private)))


async def post_graphql(hub: str, authorization: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{hub}/graphql", json={"query": QUERY}, headers={"Authorization": authorization})


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    # RFC 6750 section 3: the Bearer scheme, error="invalid_token" for a token that fails checks.
    assert challenge.startswith("Bearer"), challenge
    assert 'error="invalid_token"' in challenge, challenge
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()


async def test_a_re_signed_genuine_token_is_accepted(real_hub: str, forger: Forger) -> None:
    """The forger's baseline: with nothing changed, its token reads what the grant allows."""
    response = await post_graphql(real_hub, f"Bearer {forger.sign()}")
    assert response.status_code == 200, response.text
    assert [e["node"]["code"] for e in response.json()["data"]["indicators"]["edges"]] == ["RETAIL"]


CASES: dict[str, Callable[[Forger], str]] = {
    "alg_none": lambda f: f.unsigned(),
    "hs256_keyed_with_public_key": lambda f: f.hmac_with_public_key(),
    "typ_jwt": lambda f: f.sign(header={"typ": "JWT"}),
    "typ_missing": lambda f: f.sign(header={"typ": None}),
    "wrong_iss": lambda f: f.sign(claims={"iss": "http://127.0.0.1:1"}),
    "wrong_aud": lambda f: f.sign(claims={"aud": f.claims["client_id"]}),
    "expired_over_60s": lambda f: f.sign(
        claims={"iat": int(time.time()) - 1000, "nbf": int(time.time()) - 1000, "exp": int(time.time()) - 90}
    ),
    "nbf_over_60s_ahead": lambda f: f.sign(claims={"nbf": int(time.time()) + 600, "exp": int(time.time()) + 1200}),
    "exp_missing": lambda f: f.sign(claims={"exp": None}),
    "client_id_missing": lambda f: f.sign(claims={"client_id": None}),
    "unknown_kid": lambda f: f.sign(
        header={"kid": "unknown-" + secrets.token_hex(4)},
        key=ECKey.generate_key("P-256"),
    ),
}


@pytest.mark.parametrize(
    "case",
    list(CASES),
)
async def test_forged_token_is_refused(real_hub: str, forger: Forger, reader: Registered, case: str) -> None:
    token = CASES[case](forger)
    assert_refused(await post_graphql(real_hub, f"Bearer {token}"))
    # RFC 7662 section 2.2: introspection calls it inactive, and says nothing more.
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{real_hub}/oauth/introspect", data={"token": token}, auth=(reader.client_id, reader.secret)
        )
    assert response.status_code == 200, response.text
    assert response.json() == {"active": False}


async def test_revoked_token_is_refused(real_hub: str, token_for, register) -> None:
    client = await register("data:read indicator:RETAIL")
    token = await token_for(client)
    assert (await post_graphql(real_hub, f"Bearer {token}")).status_code == 200
    async with httpx.AsyncClient() as http:
        revoked = await http.post(
            f"{real_hub}/oauth/revoke", data={"token": token}, auth=(client.client_id, client.secret)
        )
    assert revoked.status_code == 200
    assert_refused(await post_graphql(real_hub, f"Bearer {token}"))


async def test_valid_token_of_a_disabled_client_is_refused(real_hub: str, token_for, register, pool) -> None:
    client = await register("data:read indicator:RETAIL")
    token = await token_for(client)
    assert (await post_graphql(real_hub, f"Bearer {token}")).status_code == 200
    async with pool.acquire() as conn:
        await disable_client(conn, client.client_id)
    assert_refused(await post_graphql(real_hub, f"Bearer {token}"))


async def test_two_megabyte_authorization_header_is_refused(real_hub: str, genuine: str) -> None:
    huge = f"Bearer {genuine}{'A' * 2_000_000}"
    try:
        response = await post_graphql(real_hub, huge)
    except httpx.TransportError:
        return  # the server closed the connection before the app saw the request: refused
    if response.status_code == 401:
        assert_refused(response)
    else:
        assert response.status_code not in (200, 500)
        assert response.status_code in (400, 413, 431), response.status_code


@pytest.mark.parametrize("authorization", ["Basic xyz", "Bearer", "Token abc", "bearer"])
async def test_other_schemes_and_empty_bearer_are_refused(real_hub: str, authorization: str) -> None:
    response = await post_graphql(real_hub, authorization)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "data" not in response.json()
