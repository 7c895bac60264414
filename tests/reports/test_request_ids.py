"""The request id that answers a change is the one its audit entry records, on every transport.

nrhub.web.request_id chooses one id per request (the caller's when it is a short plain token) and every
endpoint records that one: an upload no longer stores raw header text, and a change made over a
WebSocket carries the handshake's id rather than an id of the connection's own.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime

import httpx
import websockets

from tests.reports.flows import key, reporters

MONTHLY = "BC_KTXH_THANG"
PERIOD = "2026-M01"
OPEN = "mutation($r: String!, $p: Period!, $k: String!) { openDraft(regime: $r, period: $p, idempotencyKey: $k) { submissionId } }"


async def audited_ids(pool, submission: int, action: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT request_id FROM audit_entry WHERE subject = $1 AND action = $2", f"submission:{submission}", action
    )
    return [r["request_id"] for r in rows]


async def test_an_upload_records_the_id_it_answers_with_never_header_text(
    report_hub: str, token_for, gql, clock, pool
) -> None:
    province = (await reporters(pool, MONTHLY))[-4]
    token = await token_for(province, "reports:submit")
    clock.now = datetime(2026, 1, 16, 3, 0, tzinfo=UTC)
    opened = await gql(token, OPEN, r=MONTHLY, p=PERIOD, k=key())
    submission = opened["data"]["openDraft"]["submissionId"]
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "text/csv",
        "Idempotency-Key": key(),
        "X-Request-Id": "not a plain token; DROP TABLE",
    }
    async with httpx.AsyncClient() as http:
        saved = await http.put(
            f"{report_hub}/reports/{submission}/values", content="indicator,disaggregation,value\nRETAIL,,12.5\n",
            headers=headers,
        )  # fmt: skip
    assert saved.status_code == 200, saved.text
    answered = saved.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", answered)
    assert await audited_ids(pool, submission, "submission.values") == [answered]


async def test_a_change_over_the_socket_records_the_handshake_id(report_hub: str, token_for, clock, pool) -> None:
    province = (await reporters(pool, MONTHLY))[-5]
    token = await token_for(province, "reports:submit")
    clock.now = datetime(2026, 1, 16, 3, 0, tzinfo=UTC)
    url = report_hub.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url, subprotocols=["graphql-transport-ws"], additional_headers={"X-Request-Id": "dashboard-7:ws"}
    ) as ws:
        assert ws.response is not None and ws.response.headers["x-request-id"] == "dashboard-7:ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        variables = {"r": MONTHLY, "p": PERIOD, "k": key()}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": OPEN, "variables": variables}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["type"] == "next", message
    submission = message["payload"]["data"]["openDraft"]["submissionId"]
    assert await audited_ids(pool, submission, "submission.open") == ["dashboard-7:ws"]
