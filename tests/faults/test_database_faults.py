"""The hub's own database failing under it, through a TCP proxy the tests control (tests/faults/proxy.py).

A real hub (uvicorn in this event loop) reaches a real PostgreSQL only through the proxy, which
then drops connections silently, refuses them (PostgreSQL down) or freezes (PostgreSQL hung).
What must hold (issue 18):

- a silently dead LISTEN connection is noticed: every subscriber gets ``resync`` within
  RESYNC_BOUND seconds and /readyz reports the listener's state;
- an event committed after a subscription's ``subscribe`` (acknowledged by a ping's pong) is never lost;
- during an outage every request is answered 503 with Retry-After in its route's JSON error format
  and a request id, a WebSocket ``connection_init`` gets a close frame, and the log has one line
  per incident, not a traceback per request;
- with PostgreSQL hung, an authenticated request is answered within its one deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from nrhub.auth.clients import create_client
from nrhub.resolvers.events import RESYNC_BOUND
from tests.conftest import serving_hub
from tests.faults.proxy import TcpProxy, tcp_proxy

pytestmark = pytest.mark.slow

CHANGES = (
    "subscription($i: [String!]!, $u: [String!]) { observationsChanged(indicators: $i, units: $u) "
    "{ resync observations { value } } }"
)
READ = "query($i: String!) { indicator(code: $i) { code } }"


@pytest.fixture(scope="module")
async def revision(pool) -> tuple[str, int, str]:
    """An indicator and one of its current revisions: what an ``observation.revised`` event names."""
    row = await pool.fetchrow(
        "SELECT o.indicator_code, o.revision_id, u.code FROM observation_current o "
        "JOIN admin_unit u ON u.id = o.unit_id ORDER BY o.revision_id LIMIT 1"
    )
    return row["indicator_code"], row["revision_id"], row["code"]


@contextlib.asynccontextmanager
async def proxied_hub(database_url: str, **settings) -> AsyncIterator[tuple[str, TcpProxy]]:
    """A hub reaching PostgreSQL through a proxy; the whole test, its shutdown included, is bounded."""
    async with asyncio.timeout(90), tcp_proxy(database_url) as proxy:
        async with serving_hub(proxy.url, token_rate_limit=10_000, **settings) as url:
            yield url, proxy


async def token(hub: str, pool, scopes: str) -> str:
    async with pool.acquire() as conn:
        client, secret = await create_client(conn, agency="VPCP", scopes=scopes.split())
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
        )
    response.raise_for_status()
    return str(response.json()["access_token"])


@contextlib.asynccontextmanager
async def live(hub: str, bearer: str) -> AsyncIterator[websockets.ClientConnection]:
    async with websockets.connect(
        hub.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {bearer}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        yield ws


async def subscribed(ws, indicator: str, unit: str) -> str:
    """Subscribe, then ping: the pong says the hub has taken the subscribe message."""
    op = uuid.uuid4().hex
    payload = {"query": CHANGES, "variables": {"i": [indicator], "u": [unit]}}
    await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))
    await ws.send(json.dumps({"type": "ping"}))
    while (message := json.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] != "pong":
        raise AssertionError(f"expected the pong first, got {message}")
    return op


def revised(revision_id: int) -> str:
    """The event the workflow sends when a value is corrected (resolvers.submissions), as a NOTIFY payload."""
    return json.dumps({"type": "observation.revised", "revision": revision_id})


async def next_change(ws, seconds: float) -> dict:
    message = json.loads(await asyncio.wait_for(ws.recv(), seconds))
    assert message["type"] == "next", message
    return message["payload"]["data"]["observationsChanged"]


async def test_a_silently_dead_listener_is_noticed_and_subscribers_resync_within_the_bound(
    database_url, pool, revision
) -> None:
    indicator, revision_id, unit = revision
    async with proxied_hub(database_url) as (hub, proxy):
        bearer = await token(hub, pool, f"data:read indicator:{indicator}")
        async with live(hub, bearer) as first, live(hub, bearer) as second, httpx.AsyncClient() as http:
            for ws in (first, second):
                await subscribed(ws, indicator, unit)
            # Both delivering: their start (grant reads) is over before the connections go quiet.
            await pool.execute("SELECT pg_notify('hub_events', $1)", revised(revision_id))
            for ws in (first, second):
                assert (await next_change(ws, 5))["observations"]
            ready = (await http.get(f"{hub}/readyz")).json()
            assert ready["listener"]["state"] == "listening", ready
            assert proxy.blackhole_open() > 0  # no FIN, no RST: the connections just go quiet
            dropped = time.monotonic()
            for ws in (first, second):
                change = await next_change(ws, RESYNC_BOUND + 1)
                assert change == {"resync": True, "observations": []}
            assert time.monotonic() - dropped <= RESYNC_BOUND + 0.5
            # The new listening connection is a new link through the proxy.
            assert proxy.open_links >= 1


async def test_readyz_reports_the_listener_while_postgresql_hangs_and_after(database_url, pool, revision) -> None:
    indicator, _, unit = revision
    async with proxied_hub(database_url) as (hub, proxy):
        bearer = await token(hub, pool, f"data:read indicator:{indicator}")
        async with live(hub, bearer) as ws, httpx.AsyncClient(timeout=10) as http:
            await subscribed(ws, indicator, unit)
            proxy.freeze()
            await asyncio.sleep(RESYNC_BOUND)
            started = time.monotonic()
            response = await http.get(f"{hub}/readyz")
            assert time.monotonic() - started < 4, "readyz must answer quickly, not wait for the database"
            assert response.status_code == 503
            assert response.json()["listener"]["state"] == "reconnecting", response.json()
            proxy.thaw()
            change = await next_change(ws, RESYNC_BOUND + 5)
            assert change["resync"] is True
            for _ in range(50):
                response = await http.get(f"{hub}/readyz")
                if response.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert response.json() == {"status": "ready", "listener": {"state": "listening", "subscribers": 1}}


async def test_an_event_committed_right_after_the_pong_reaches_the_new_subscription(
    database_url, pool, revision, hub_for_events
) -> None:
    indicator, revision_id, unit = revision
    hub = hub_for_events
    bearer = await token(hub, pool, f"data:read indicator:{indicator}")
    missed = 0
    async with asyncio.timeout(120), live(hub, bearer) as ws:
        for _ in range(30):
            op = await subscribed(ws, indicator, unit)
            await pool.execute("SELECT pg_notify('hub_events', $1)", revised(revision_id))  # at 0 ms
            try:
                change = await next_change(ws, 3)
                assert [o["value"] for o in change["observations"]], change
            except TimeoutError:
                missed += 1
            await ws.send(json.dumps({"id": op, "type": "complete"}))
    assert missed == 0, f"{missed} of 30 events committed after an acknowledged subscribe were lost"


@pytest.fixture(scope="module")
async def hub_for_events(database_url) -> AsyncIterator[str]:
    async with serving_hub(database_url, token_rate_limit=10_000) as url:
        yield url


def warnings_about_the_database(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "database" in r.getMessage()]


async def test_an_outage_is_answered_503_in_each_routes_format_and_logged_once(
    database_url, pool, revision, caplog
) -> None:
    indicator, _, _ = revision
    caplog.set_level(logging.WARNING)
    async with proxied_hub(database_url) as (hub, proxy):
        bearer = await token(hub, pool, f"data:read indicator:{indicator}")
        async with pool.acquire() as conn:
            client, secret = await create_client(conn, agency="VPCP", scopes=["data:read"])
        caplog.clear()
        proxy.refuse()
        async with httpx.AsyncClient(timeout=15) as http:
            for _ in range(5):
                answer = await http.post(
                    f"{hub}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client.client_id, secret or ""),
                )
                assert answer.status_code == 503, answer.text
                assert answer.headers["retry-after"].isdigit()
                assert answer.headers["x-request-id"]
                assert answer.headers.get("connection") != "close"  # the keep-alive connection stays usable
                assert answer.json()["error"] == "temporarily_unavailable"
            graphql = await http.post(
                f"{hub}/graphql",
                json={"query": READ, "variables": {"i": indicator}},
                headers={"Authorization": f"Bearer {bearer}"},
            )
            assert graphql.status_code == 503, graphql.text
            assert graphql.headers["retry-after"].isdigit()
            assert graphql.json()["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
            url = hub.replace("http://", "ws://") + "/graphql"
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {bearer}"}}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 15)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            tracebacks = [r for r in caplog.records if r.exc_info]
            assert not tracebacks, [r.getMessage() for r in tracebacks]
            assert len([m for m in warnings_about_the_database(caplog) if "unavailable (" in m]) == 1, caplog.text
            proxy.admit()
            for _ in range(50):
                answer = await http.post(
                    f"{hub}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client.client_id, secret or ""),
                )
                if answer.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert answer.status_code == 200, answer.text
            await http.get(f"{hub}/readyz")
            assert any("available again" in m for m in warnings_about_the_database(caplog)), caplog.text


async def test_with_postgresql_hung_an_authenticated_request_is_answered_within_its_deadline(
    database_url, pool, revision
) -> None:
    indicator, _, _ = revision
    async with proxied_hub(database_url, execution_timeout=2.0) as (hub, proxy):
        bearer = await token(hub, pool, f"data:read indicator:{indicator}")
        async with httpx.AsyncClient(timeout=30) as http:
            proxy.freeze()
            try:
                started = time.monotonic()
                answer = await http.post(
                    f"{hub}/graphql",
                    json={"query": READ, "variables": {"i": indicator}},
                    headers={"Authorization": f"Bearer {bearer}"},
                )
                took = time.monotonic() - started
            finally:
                proxy.thaw()
        assert answer.status_code == 503, answer.text
        assert answer.json()["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
        assert took < 2.0 + 1.0 + 1.5, f"answered after {took:.1f} s"


async def test_pool_connections_that_went_silent_are_replaced(database_url, pool, revision) -> None:
    """After a NAT forgets every connection, reads fail for at most a deadline, then work again."""
    indicator, _, _ = revision
    async with proxied_hub(database_url, execution_timeout=2.0) as (hub, proxy):
        bearer = await token(hub, pool, f"data:read indicator:{indicator}")
        request = {
            "json": {"query": READ, "variables": {"i": indicator}},
            "headers": {"Authorization": f"Bearer {bearer}"},
        }
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.post(f"{hub}/graphql", **request)).status_code == 200
            proxy.blackhole_open()
            started = time.monotonic()
            while True:
                answer = await http.post(f"{hub}/graphql", **request)
                if answer.status_code == 200 and "errors" not in answer.json():
                    break
                assert answer.status_code == 503, answer.text
                assert time.monotonic() - started < 20, "reads did not recover"
        assert answer.json()["data"]["indicator"]["code"] == indicator
