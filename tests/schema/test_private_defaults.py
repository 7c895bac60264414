"""Private by default: without a token nothing is readable unless the operator opens public reading,
the demo catalogue publishes only headline indicators, and the schema itself (introspection and the
federation subgraph's ``_service { sdl }``) is answered only when HUB_INTROSPECTION is on and the caller
holds catalog:read, over HTTP and WebSocket alike; people signed in to the hub's GraphiQL get it for
its docs. Real hubs on 127.0.0.1, tokens from their own /oauth/token."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx
import websockets

from nrhub.auth.clients import create_client
from nrhub.auth.graphiql_client import GRAPHIQL_CLIENT_ID
from nrhub.auth.principal import Grants, Principal
from nrhub.config.settings import load_settings
from tests.conftest import serving_hub

ROOT = Path(__file__).resolve().parents[2]
HEADLINE = {"GDP_GROWTH", "CPI_YOY", "POPULATION"}
INDICATORS = "{ indicators(first: 100) { edges { node { code sensitivity } } } }"
INTROSPECTION = "{ __schema { queryType { name } } }"
SDL = "{ _service { sdl } }"


@contextlib.asynccontextmanager
async def serving(
    database_url: str, authenticate: Callable[..., Awaitable[Principal]] | None = None, **settings: object
) -> AsyncIterator[str]:
    """A hub with these settings, else the defaults (what is under test), and no token rate limit to speak of."""
    async with serving_hub(database_url, authenticate=authenticate, **{"token_rate_limit": 10_000, **settings}) as url:
        yield url


async def token(url: str, database_url: str, agency: str, scopes: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        client, secret = await create_client(conn, agency=agency, scopes=scopes.split())
    finally:
        await conn.close()
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
        )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def ask(url: str, query: str, bearer: str | None = None, **headers: str) -> dict:
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    if bearer:
        sent["Authorization"] = f"Bearer {bearer}"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{url}/graphql", json={"query": query}, headers=sent)
    assert response.status_code in (200, 400), response.text
    return dict(response.json())


def answered(body: dict) -> bool:
    """True when the schema was answered; a refusal must say why, as a caller's error, never INTERNAL."""
    if "errors" not in body:
        return True
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    assert "introspection" in body["errors"][0]["message"] and "schema.graphql" in body["errors"][0]["message"]
    return False


def codes(body: dict) -> set[str]:
    assert "errors" not in body, body
    return {e["node"]["code"] for e in body["data"]["indicators"]["edges"]}


def test_the_defaults_are_private_and_the_demo_opens_them_explicitly() -> None:
    defaults = load_settings(environ={})
    assert (defaults.public_read, defaults.introspection) == (False, False)
    demo = load_settings(ROOT / "hub" / "demo" / "sources.toml", environ={})  # what `make run` serves with
    assert (demo.public_read, demo.introspection) == (True, True)


async def test_the_demo_publishes_only_headline_indicators(pool: asyncpg.Pool) -> None:
    by_sensitivity: dict[str, set[str]] = {}
    for row in await pool.fetch("SELECT code, sensitivity FROM indicator"):
        by_sensitivity.setdefault(row["sensitivity"], set()).add(row["code"])
    assert by_sensitivity["PUBLIC"] == HEADLINE
    assert by_sensitivity["INTERNAL"] and by_sensitivity["RESTRICTED"]


async def test_without_a_token_nothing_is_readable_by_default(database_url: str) -> None:
    async with serving(database_url) as url:
        body = await ask(url, '{ o: observation(indicator: "GDP_GROWTH", unit: "VN", period: "2025-Q4") { value } }')
        listed = await ask(url, INDICATORS)
    assert body["data"]["o"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert codes(listed) == set()


async def test_an_anonymous_demo_caller_reads_less_than_a_token_of_one_field(database_url: str) -> None:
    async with serving(database_url, public_read=True) as url:
        labour = await token(url, database_url, "BNV", "data:read field:labour")
        anonymous, granted = await ask(url, INDICATORS), await ask(url, INDICATORS, labour)
        value = await ask(url, '{ observation(indicator: "GDP_GROWTH", unit: "VN", period: "2025-Q4") { value } }')
    assert codes(anonymous) == HEADLINE and len(codes(granted)) > len(HEADLINE)
    assert {e["node"]["sensitivity"] for e in anonymous["data"]["indicators"]["edges"]} == {"PUBLIC"}
    assert value["data"]["observation"]["value"] is not None


async def test_the_schema_needs_the_setting_and_catalog_read(database_url: str) -> None:
    for introspection in (False, True):
        # With public reading on, a caller without a token holds catalog:read: the demo's case.
        async with serving(database_url, public_read=True, introspection=introspection) as url:
            catalogue = await token(url, database_url, "BNV", "catalog:read")
            labour = await token(url, database_url, "BNV", "data:read field:labour")
            for query in (INTROSPECTION, SDL):
                assert answered(await ask(url, query)) is introspection, (query, introspection)
                assert answered(await ask(url, query, catalogue)) is introspection, (query, introspection)
                assert not answered(await ask(url, query, labour)), query
    async with serving(database_url, introspection=True) as url:  # public reading off: no scope without a token
        for query in (INTROSPECTION, SDL):
            assert not answered(await ask(url, query)), query


async def test_over_websocket_the_schema_follows_the_same_rule(database_url: str) -> None:
    async def first_message(url: str, bearer: str) -> dict:
        ws_url = url.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {bearer}"}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": INTROSPECTION}}))
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))

    async with serving(database_url) as url:  # introspection off
        refused = await first_message(url, await token(url, database_url, "BNV", "catalog:read"))
    assert refused["type"] == "error" and refused["payload"][0]["extensions"]["code"] == "FORBIDDEN", refused
    async with serving(database_url, introspection=True) as url:
        allowed = await first_message(url, await token(url, database_url, "BNV", "catalog:read"))
    assert allowed["type"] == "next" and allowed["payload"]["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_a_person_signed_in_to_graphiql_gets_its_docs_without_catalog_read(database_url: str) -> None:
    person = Principal(
        grants=Grants(frozenset()),
        scopes=frozenset({"data:read", "field:labour"}),
        agency_code="BTC",
        client_id=GRAPHIQL_CLIENT_ID,
        user="analyst",
    )
    principals = {
        "graphiql": person,
        "another app": replace(person, client_id="ministry-dashboard"),  # the same person elsewhere
        "graphiql client, no person": replace(person, user=None),
    }

    async def authenticate(request) -> Principal:
        return principals[request.headers["x-test-principal"]]

    assets = ROOT / "node_modules"
    async with serving(database_url, authenticate, graphiql=True, assets_dir=assets) as url:
        for query in (INTROSPECTION, SDL):
            assert answered(await ask(url, query, x_test_principal="graphiql")), query
            assert not answered(await ask(url, query, x_test_principal="another app")), query
            assert not answered(await ask(url, query, x_test_principal="graphiql client, no person")), query
    async with serving(database_url, authenticate, graphiql=False) as url:  # no GraphiQL, no exception
        assert not answered(await ask(url, INTROSPECTION, x_test_principal="graphiql"))
