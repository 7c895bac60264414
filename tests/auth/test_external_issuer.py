"""Tokens from a trusted external issuer: its JWKS served over real HTTP on 127.0.0.1, its tokens
signed here with its keys, verified by the hub's resource server on a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nrhub.auth.external import TrustedIssuer
from nrhub.config.errors import ConfigError
from nrhub.config.settings import load_settings
from tests.auth.conftest import serving
from tests.federation.upstreams import serve, stop

ISSUER = "https://sso.example.gov.vn/realms/ministries"
HUB_AUDIENCE = "https://hub.example.gov.vn/graphql"
GRANTS = {
    "hub-retail-hcm": ("data:read", "indicator:RETAIL", "region:79"),
    "hub-catalogue": ("catalog:read",),
}
ME = "{ me { clientId user scopes indicators regions } }"
POINT = '{{ observation(indicator: "RETAIL", unit: "{unit}", period: "2026-M03") {{ value }} }}'


@dataclass
class IdentityProvider:
    """The ministries' identity provider: its signing keys and the JWKS it publishes."""

    keys: dict[str, Any] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    fetches: int = 0
    url: str = ""
    broken: str | None = None  # "status": the JWKS answers 503; "malformed": a key that does not parse

    def add_key(self, kid: str, kind: str = "RSA") -> None:
        if kind == "RSA":
            self.keys[kid] = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})
        else:
            self.keys[kid] = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"})
        self.published.append(kid)

    async def jwks(self, request: Request) -> JSONResponse:
        self.fetches += 1
        if self.broken == "status":
            return JSONResponse({"error": "maintenance"}, 503)
        if self.broken == "malformed":
            return JSONResponse({"keys": [{"kty": "RSA", "kid": "k1", "n": "not base64url!"}]})
        return JSONResponse({"keys": [self.keys[k].as_dict(private=False) for k in self.published]})

    def token(self, kid: str = "k1", *, header: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": HUB_AUDIENCE,
            "sub": "nguyen.van.a",
            "client_id": "finance-dashboard",
            "scope": "hub-retail-hcm openid",
            "jti": f"ext-{time.monotonic_ns()}",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        key = self.keys[kid]
        alg = "RS256" if isinstance(key, RSAKey) else "ES256"
        head = {"alg": alg, "typ": "at+jwt", "kid": kid, **(header or {})}
        return jwt.encode(head, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg])


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.add_key("k1")
    server, task, provider.url = await serve(Starlette(routes=[Route("/certs", provider.jwks)]))
    yield provider
    await stop(server, task)


def trusting(idp: IdentityProvider, keys_ttl: float = 300.0) -> TrustedIssuer:
    return TrustedIssuer(
        name="sso",
        issuer=ISSUER,
        jwks_uri=f"{idp.url}/certs",
        algorithms=("RS256", "ES256"),
        claim="scope",
        grants=GRANTS,
        keys_ttl=keys_ttl,
    )


@pytest.fixture
async def hub(database_url: str, idp: IdentityProvider) -> AsyncIterator[str]:
    async with serving(database_url, audience=HUB_AUDIENCE, trusted_issuers=(trusting(idp),)) as url:
        yield url


async def call(url: str, query: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            f"{url}/graphql",
            json={"query": query},
            headers={"authorization": f"Bearer {token}", "accept": "application/json"},
        )


async def test_a_trusted_token_reads_exactly_what_the_mapping_grants(hub: str, idp: IdentityProvider, pool) -> None:
    me = (await call(hub, ME, idp.token())).json()["data"]["me"]
    # "openid" maps to nothing; the mapped value grants its three scopes, no more.
    assert me == {
        "clientId": "sso/finance-dashboard",
        "user": "sso/nguyen.van.a",
        "scopes": ["data:read", "indicator:RETAIL", "region:79"],
        "indicators": ["RETAIL"],
        "regions": ["79"],
    }
    stored = await pool.fetchval(
        "SELECT c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id WHERE u.code = '79'"
        " AND u.valid_to IS NULL AND c.indicator_code = 'RETAIL' AND c.period = '2026-M03' AND c.dims = ''"
    )
    inside = (await call(hub, POINT.format(unit="79"), idp.token())).json()
    assert str(inside["data"]["observation"]["value"]) == str(stored)
    outside = (await call(hub, POINT.format(unit="01"), idp.token())).json()
    assert outside["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_hub_scopes_named_by_the_issuer_grant_nothing(hub: str, idp: IdentityProvider) -> None:
    # Only the mapping grants: an issuer that writes the hub's own scopes into a token gets none of them.
    token = idp.token(scope="data:read indicator:RETAIL indicator:GDP_CUR admin")
    me = (await call(hub, ME, token)).json()["data"]["me"]
    assert (me["scopes"], me["indicators"]) == ([], [])
    body = (await call(hub, POINT.format(unit="79"), token)).json()
    assert body["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND")


async def test_tokens_failing_a_check_get_401_with_a_challenge(hub: str, idp: IdentityProvider) -> None:
    idp.keys["stranger"] = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})  # same kid, other key
    secret = OctKey.import_key(b"a shared secret that is long enough for HS256!!")
    now = int(time.time())
    hs256 = jwt.encode(
        {"alg": "HS256", "typ": "at+jwt", "kid": "k1"},
        {"iss": ISSUER, "aud": HUB_AUDIENCE, "sub": "x", "client_id": "x", "exp": now + 60},
        secret,
        algorithms=["HS256"],
    )
    cases = {
        "another audience": idp.token(aud="https://other.example/graphql"),
        "expired": idp.token(exp=now - 120, iat=now - 400),
        "not yet valid": idp.token(nbf=now + 600),
        "an ID token": idp.token(header={"typ": "JWT"}),
        "HMAC": hs256,
        "forged signature": idp.token("stranger", header={"kid": "k1"}),
        "no client": idp.token(client_id=None),
    }
    for case, token in cases.items():
        response = await call(hub, ME, token)
        assert response.status_code == 401, (case, response.text)
        assert response.headers["www-authenticate"].startswith('Bearer realm="nrhub", error="invalid_token"'), case


async def test_a_rotated_key_is_fetched_once_and_unknown_kids_do_not_flood_the_issuer(
    hub: str, idp: IdentityProvider
) -> None:
    assert (await call(hub, ME, idp.token())).status_code == 200
    assert idp.fetches == 1
    # The issuer rotates: a token signed with its new key makes the hub fetch the keys again, once.
    idp.add_key("k2", kind="EC")
    assert (await call(hub, ME, idp.token("k2"))).status_code == 200
    assert idp.fetches == 2
    # Tokens naming kids nobody published: refused, without another fetch so soon after the last.
    idp.keys["k9"] = RSAKey.generate_key(2048, parameters={"kid": "k9", "alg": "RS256"})
    for _ in range(5):
        response = await call(hub, ME, idp.token("k9"))
        assert response.status_code == 401 and "unknown key" in response.headers["www-authenticate"]
    assert idp.fetches == 2
    # The keys the hub holds keep working.
    assert (await call(hub, ME, idp.token("k1"))).status_code == 200 and idp.fetches == 2


@pytest.mark.parametrize("broken", ["status", "malformed"])
async def test_an_issuer_whose_keys_cannot_be_fetched_gets_401_never_500(
    database_url: str, idp: IdentityProvider, broken: str
) -> None:
    idp.broken = broken
    async with serving(database_url, audience=HUB_AUDIENCE, trusted_issuers=(trusting(idp),)) as hub:
        for _ in range(3):
            response = await call(hub, ME, idp.token())
            assert response.status_code == 401 and "could not be fetched" in response.headers["www-authenticate"]
        assert idp.fetches == 1  # asked again in 30 s, not on every request


async def test_keys_held_survive_a_failed_refresh(database_url: str, idp: IdentityProvider) -> None:
    async with serving(database_url, audience=HUB_AUDIENCE, trusted_issuers=(trusting(idp, 0.2),)) as hub:
        assert (await call(hub, ME, idp.token())).status_code == 200
        idp.broken = "status"
        await asyncio.sleep(0.3)  # past keys_ttl: the next token makes the hub refresh, which fails
        for _ in range(3):
            assert (await call(hub, ME, idp.token())).status_code == 200
        assert idp.fetches == 2


async def test_a_revoked_token_is_refused(hub: str, idp: IdentityProvider, database_url: str) -> None:
    token = idp.token(jti="ext-revoked-1")
    assert (await call(hub, ME, token)).status_code == 200
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO revoked_token (jti, expires_at) VALUES ($1, now() + interval '1 hour')", "ext-revoked-1"
        )
    finally:
        await conn.close()
    response = await call(hub, ME, token)
    assert response.status_code == 401 and "revoked" in response.headers["www-authenticate"]


TOML = """
[[trusted_issuer]]
name = "sso"
issuer = "https://sso.example.gov.vn/realms/ministries"
jwks_uri = "{jwks}"
algorithms = {algorithms}
claim = "roles"
client_claim = "azp"
[trusted_issuer.grants]
"finance-analyst" = "{scopes}"
"""


def settings_from(tmp_path: Path, **values: str) -> Any:
    defaults = {
        "jwks": "https://sso.example.gov.vn/certs",
        "algorithms": '["RS256"]',
        "scopes": "data:read field:finance",
    }
    path = tmp_path / "hub.toml"
    path.write_text(TOML.format(**{**defaults, **values}), encoding="utf-8")
    return load_settings(path, environ={})


def test_a_trusted_issuer_is_configured_in_the_settings_file(tmp_path: Path) -> None:
    (trusted,) = settings_from(tmp_path).trusted_issuers
    assert (trusted.name, trusted.claim, trusted.client_claim, trusted.algorithms) == (
        "sso",
        "roles",
        "azp",
        ("RS256",),
    )
    assert trusted.grants == {"finance-analyst": ("data:read", "field:finance")}
    assert (trusted.keys_ttl, trusted.timeout, trusted.audience) == (300.0, 3.0, None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"algorithms": '["HS256"]'}, "algorithms must be a list of"),
        ({"algorithms": '["none"]'}, "algorithms must be a list of"),
        ({"scopes": "data:read reports:submit"}, "'reports:submit' (for 'finance-analyst') is not a reading scope"),
        ({"scopes": "admin"}, "is not a reading scope"),
        ({"jwks": "http://sso.example.gov.vn/certs"}, "jwks_uri must be https://"),
    ],
)
def test_a_trusted_issuer_that_would_weaken_the_hub_stops_the_start(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings_from(tmp_path, **values)


def test_an_unknown_key_or_the_hub_itself_as_issuer_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    text = TOML.format(jwks="https://x/certs", algorithms='["RS256"]', scopes="data:read")
    path.write_text(text.replace('name = "sso"\n', 'name = "sso"\njwks_url = 1\n'))
    with pytest.raises(ConfigError, match="unknown key 'jwks_url'"):
        load_settings(path, environ={})
    path.write_text(
        '[hub]\nissuer = "https://sso.example.gov.vn/realms/ministries"\n'
        + TOML.format(jwks="https://x/certs", algorithms='["RS256"]', scopes="data:read")
    )
    with pytest.raises(ConfigError, match="is the hub itself"):
        load_settings(path, environ={})


def test_the_docs_example_is_valid(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    section = page[page.index("## External issuers") :]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    path = tmp_path / "readme.toml"
    path.write_text(example.group(1), encoding="utf-8")
    (trusted,) = load_settings(path, environ={}).trusted_issuers
    assert (trusted.name, trusted.claim, trusted.client_claim) == ("sso", "roles", "azp")
    assert trusted.grants["hcmc-dashboard"] == ("data:read", "indicator:RETAIL", "indicator:CPI_YOY", "region:79")


async def test_a_websocket_takes_a_trusted_token_too(hub: str, idp: IdentityProvider) -> None:
    url = hub.replace("http://", "ws://") + "/graphql"

    async def init(token: str) -> dict[str, Any]:
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            try:
                return json.loads(await asyncio.wait_for(ws.recv(), 5))
            except websockets.ConnectionClosed as closed:
                return {"closed": closed.rcvd.code if closed.rcvd else None}

    assert (await init(idp.token()))["type"] == "connection_ack"
    assert await init(idp.token(exp=int(time.time()) - 120)) == {"closed": 4403}
