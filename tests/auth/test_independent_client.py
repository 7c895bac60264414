"""A developer's own client, written with httpx and joserfc only: discovery (RFC 8414), client
credentials, and verification of the access token against the published JWKS, across a key
rotation. The hub's modules are used only to register the client, start servers and rotate."""

from __future__ import annotations

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from nrhub.auth.keys import rotate_key
from tests.auth.conftest import Registered, hub_connection, serving


async def discover(http: httpx.AsyncClient, issuer: str) -> dict:
    metadata = (await http.get(f"{issuer}/.well-known/oauth-authorization-server")).json()
    # RFC 8414 section 3.3: the issuer in the metadata is the one it was fetched for.
    assert metadata["issuer"] == issuer
    assert "client_credentials" in metadata["grant_types_supported"]
    assert metadata["access_token_signing_alg_values_supported"] == ["ES256"]
    return metadata


async def client_credentials(http: httpx.AsyncClient, token_endpoint: str, client: Registered) -> str:
    response = await http.post(
        token_endpoint, data={"grant_type": "client_credentials"}, auth=(client.client_id, client.secret)
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def verify(token: str, jwks: dict, *, issuer: str, audience: str, client_id: str) -> dict:
    """What an independent resource server does with an RFC 9068 access token."""
    keys = KeySet.import_key_set(jwks)
    decoded = jwt.decode(token, keys, algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt"  # RFC 9068 section 4
    registry = JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
        client_id={"essential": True, "value": client_id},
        jti={"essential": True},
        iat={"essential": True},
    )
    registry.validate(decoded.claims)
    return decoded.header


async def test_developer_client_verifies_tokens_across_a_key_rotation(
    real_hub: str, database_url: str, register
) -> None:
    client = await register("data:read field:labour")
    audience = f"{real_hub}/graphql"  # the resource the token is for: the hub's GraphQL endpoint
    async with httpx.AsyncClient() as http:
        metadata = await discover(http, real_hub)
        first = await client_credentials(http, metadata["token_endpoint"], client)
        jwks = (await http.get(metadata["jwks_uri"])).json()
        assert all("d" not in key for key in jwks["keys"])  # public parts only
        first_kid = verify(first, jwks, issuer=real_hub, audience=audience, client_id=client.client_id)["kid"]

        async with hub_connection(database_url) as conn:
            new_kid = await rotate_key(conn, 900)
        assert new_kid != first_kid
        second = await client_credentials(http, metadata["token_endpoint"], client)
        refreshed = (await http.get(metadata["jwks_uri"])).json()
        for token in (first, second):
            verify(token, refreshed, issuer=real_hub, audience=audience, client_id=client.client_id)
        assert first_kid in {key["kid"] for key in refreshed["keys"]}


async def test_every_token_verifies_against_the_published_jwks_right_after_rotation(
    database_url: str, register
) -> None:
    """Two hub processes of one issuer (DESIGN: several processes serve one database)."""
    client = await register("data:read field:labour")
    async with serving(database_url) as issuer, httpx.AsyncClient() as http:
        metadata = await discover(http, issuer)
        await http.get(metadata["jwks_uri"])  # this process has its keys loaded, as a serving hub has
        async with hub_connection(database_url) as conn:
            new_kid = await rotate_key(conn, 900)
        async with serving(database_url, issuer=issuer) as replica:
            token = await client_credentials(http, f"{replica}/oauth/token", client)
        published = (await http.get(metadata["jwks_uri"])).json()
        header = verify(token, published, issuer=issuer, audience=f"{issuer}/graphql", client_id=client.client_id)
        assert header["kid"] == new_kid
