"""Live updates over graphql-transport-ws: events, grants per event, and the protocol's close codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.reports.test_lifecycle import REVIEW, SUBMIT, fill_monthly

VN = timezone(timedelta(hours=7))
SUBMISSIONS = (
    'subscription { submissionEvents(regime: "BC_KTXH_THANG") { resync type submissionId agency status onTime } }'
)
CHANGES = 'subscription($i: [String!]!) { observationsChanged(indicators: $i, parent: "VN", level: PROVINCE) { resync observations { indicator { code } unit { code } period value provenance { kind submissionId } } } }'


@contextlib.asynccontextmanager
async def connected(report_hub: str, token: str | None) -> AsyncIterator[websockets.ClientConnection]:
    url = report_hub.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["type"] == "connection_ack", ack
        yield ws


async def start(ws, query: str, **variables) -> str:
    op = uuid.uuid4().hex
    await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {"query": query, "variables": variables}}))
    return op


async def next_payload(ws) -> dict:
    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert message["type"] == "next", message
    return message["payload"]


async def nothing_within(ws, seconds: float) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False


async def test_submission_events_and_changed_values_reach_subscribers_within_their_grants(
    report_hub, gql, token_for, clock, pool
) -> None:
    office = await token_for("VPCP", "reports:review audit:read data:read field:growth field:business_environment")
    centre_restricted = await token_for("VPCP", "audit:read data:read field:growth region:86")
    indicator_restricted = await token_for("VPCP", "data:read indicator:NEW_ENT")
    province = await token_for("UBND_31", "reports:submit")
    clock.now = datetime(2026, 12, 2, 9, 0, tzinfo=VN)
    async with (
        connected(report_hub, office) as all_events,
        connected(report_hub, centre_restricted) as region,
        connected(report_hub, indicator_restricted) as indicator_only,
    ):
        await start(all_events, SUBMISSIONS)
        await start(region, SUBMISSIONS)
        await start(all_events, CHANGES, i=["RETAIL", "NEW_ENT"])
        await start(indicator_only, CHANGES, i=["NEW_ENT"])
        await asyncio.sleep(0.3)  # subscriptions registered
        submission = await fill_monthly(gql, province, pool, "31", "2026-M12")
        await gql(province, SUBMIT, s=submission, k=str(uuid.uuid4()))
        submitted = (await next_payload(all_events))["data"]["submissionEvents"]
        assert (submitted["type"], submitted["submissionId"], submitted["agency"]) == (
            "submission.submitted",
            submission,
            "UBND_31",
        )
        await gql(office, REVIEW, s=submission, d="ACCEPT", k=str(uuid.uuid4()))
        payloads = [await next_payload(all_events), await next_payload(all_events)]
        accepted = next(p["data"]["submissionEvents"] for p in payloads if "submissionEvents" in p["data"])
        changed = next(p["data"]["observationsChanged"] for p in payloads if "observationsChanged" in p["data"])
        assert accepted["status"] == "ACCEPTED"
        assert {(o["indicator"]["code"], o["unit"]["code"]) for o in changed["observations"]} == {
            ("RETAIL", "31"),
            ("NEW_ENT", "31"),
        }
        assert all(
            o["provenance"] == {"kind": "SUBMISSION", "submissionId": str(submission)} for o in changed["observations"]
        )
        only = (await next_payload(indicator_only))["data"]["observationsChanged"]["observations"]
        assert [o["indicator"]["code"] for o in only] == ["NEW_ENT"]
        # Hai Phong (31) is outside region 86: that subscriber hears nothing of it.
        assert await nothing_within(region, 1.0)


async def test_subscribing_to_an_indicator_you_cannot_read_is_forbidden(report_hub, token_for) -> None:
    reader = await token_for("BTC", "data:read indicator:NEW_ENT")
    async with connected(report_hub, reader) as ws:
        op = await start(ws, CHANGES, i=["RETAIL"])
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert message["id"] == op and message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("steps", "code"),
    [
        ([{"type": "subscribe", "id": "1", "payload": {"query": "subscription { submissionEvents { type } }"}}], 4401),
        ([{"type": "connection_init", "payload": {"Authorization": "Bearer not-a-token"}}], 4403),
        (["not json"], 4400),
    ],
)
async def test_protocol_close_codes(report_hub, steps, code) -> None:
    url = report_hub.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        for step in steps:
            await ws.send(step if isinstance(step, str) else json.dumps(step))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == code


async def test_second_init_duplicate_id_and_foreign_origin(report_hub, token_for) -> None:
    token = await token_for("VPCP", "audit:read")
    async with connected(report_hub, token) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 4429
    async with connected(report_hub, token) as ws:
        for _ in range(2):
            await ws.send(json.dumps({"id": "same", "type": "subscribe", "payload": {"query": SUBMISSIONS}}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 4409
    url = report_hub.replace("http://", "ws://") + "/graphql"
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"], origin="https://evil.example"):
            pass
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url, subprotocols=["graphql-ws"]):
            pass


async def test_revoked_token_is_cut_off_within_seconds(report_hub, pool) -> None:
    import httpx

    from nrhub.auth.clients import create_client

    async with pool.acquire() as conn:
        client, secret = await create_client(conn, agency="VPCP", scopes=["audit:read"])
    async with httpx.AsyncClient() as http:
        token = (
            await http.post(
                f"{report_hub}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, secret or ""),
            )
        ).json()["access_token"]
        async with connected(report_hub, token) as ws:
            await start(ws, SUBMISSIONS)
            await http.post(f"{report_hub}/oauth/revoke", data={"token": token}, auth=(client.client_id, secret or ""))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 6)
    assert closed.value.rcvd.code == 4403


async def test_a_query_over_the_socket_answers_as_over_http(report_hub, gql, token_for) -> None:
    # A code the caller may not read is FORBIDDEN beside the values it may read, on both transports.
    token = await token_for("VPCP", "data:read indicator:RETAIL")
    query = '{ table(indicators: ["RETAIL", "UNEMP"], units: ["79"]) { columns { code } rows } }'
    over_http = await gql(token, query)
    assert [c["code"] for c in over_http["data"]["table"]["columns"]] == ["RETAIL"]
    assert [e["extensions"]["code"] for e in over_http["errors"]] == ["FORBIDDEN"]
    async with connected(report_hub, token) as ws:
        op = await start(ws, query)
        assert await next_payload(ws) == over_http
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"id": op, "type": "complete"}
