"""Reminders through webhooks: registered over GraphQL, recorded once, signed, retried, one leader.

A real hub (uvicorn in this loop) with a clock the test sets, and a real receiver on 127.0.0.1 that
checks each signature with the snippet of docs/reports.md. The crash case (a hub killed mid-delivery)
is tests/faults/test_webhook_crash.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import orjson
import pytest

from nrhub.auth.clients import create_client
from nrhub.scheduler import LEADER_LOCK_KEY
from tests.conftest import ROOT, run_nrhub, serving_hub
from tests.reports.conftest import Clock
from tests.reports.webhook_receiver import (
    LATE,
    PROMPT,
    RECEIVER,
    REGIME,
    Receiver,
    reminded_regime,
    serving_receiver,
    submitted,
)

FAST = {
    "reminders": True,
    "reminder_interval": 0.1,
    "webhook_allow_loopback": True,
    "webhook_retry_base": 0.1,
    "webhook_timeout": 3.0,
    "webhook_max_attempts": 4,
    "token_rate_limit": 10_000,
}
BEFORE = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)  # 2026-M10 is due 2026-11-05 23:59:59 Vietnam time
AFTER = datetime(2026, 11, 6, 0, 0, tzinfo=UTC)  # ... and overdue from 2026-11-05 17:00 UTC
REGISTER = """mutation($url: String!, $k: String!, $events: [ReminderKind!]) {
  registerWebhook(url: $url, events: $events, idempotencyKey: $k) { webhook { webhookId url events disabled } secret }
}"""
DELIVERIES = """query($w: Int!, $s: DeliveryStatus) {
  webhookDeliveries(webhookId: $w, status: $s) {
    edges { node { deliveryId event status attempts lastStatusCode lastError payload deliveredAt } }
  }
}"""


@pytest.fixture(scope="module")
async def url(clone_demo) -> str:
    """A private demo database with the reminder regime: 2026-M10 owed by LATE, submitted by PROMPT."""
    database = await clone_demo()
    conn = await asyncpg.connect(database)
    try:
        await reminded_regime(conn)
        await submitted(conn, REGIME, PROMPT, "2026-M10")
    finally:
        await conn.close()
    return database


@pytest.fixture(scope="module")
def clock() -> Clock:
    clock = Clock()
    clock.now = datetime(2026, 10, 1, tzinfo=UTC)  # nothing due yet
    return clock


@pytest.fixture(scope="module")
async def hub(url: str, clock: Clock) -> AsyncIterator[str]:
    async with serving_hub(url, clock=clock, **FAST) as base:
        yield base


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with serving_receiver() as running:
        yield running


@pytest.fixture(scope="module")
async def tokens(hub: str, url: str) -> dict[str, str]:
    return {
        "late": await token(hub, url, LATE, "reports:submit"),
        "prompt": await token(hub, url, PROMPT, "reports:submit"),
        "receiver": await token(hub, url, RECEIVER, "reports:review"),
    }


@pytest.fixture(scope="module")
async def hooks(hub: str, tokens: dict[str, str], receiver: Receiver) -> dict[str, dict]:
    """One webhook per agency, registered over GraphQL, each at its own path of the receiver."""
    made = {}
    for name, bearer in tokens.items():
        answer = await gql(hub, bearer, REGISTER, url=f"{receiver.url}/{name}", k=str(uuid.uuid4()))
        assert "errors" not in answer, answer
        made[name] = answer["data"]["registerWebhook"]
        receiver.secrets[f"/{name}"] = made[name]["secret"]
    return made


async def token(hub: str, url: str, agency: str, scopes: str) -> str:
    async with _connection(url) as conn:
        client, secret = await create_client(conn, agency=agency, scopes=scopes.split())
    async with httpx.AsyncClient() as http:
        issued = await http.post(
            f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
        )
    issued.raise_for_status()
    return str(issued.json()["access_token"])


@contextlib.asynccontextmanager
async def _connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def gql(hub: str, bearer: str, query: str, **variables: object) -> dict:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{hub}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {bearer}"},
        )
    return dict(answer.json())


async def settled(receiver: Receiver, count: int, seconds: float = 15.0) -> None:
    """Wait for ``count`` requests, then a while longer: several scheduler runs must add nothing."""
    async with asyncio.timeout(seconds):
        while len(receiver.received) < count:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.6)


def test_the_documented_snippet_runs_as_written() -> None:
    page = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8").split("## Reminders and webhooks", 1)[1]
    block = page.split("```sh not-run\n", 1)[1].split("```\n", 1)[0]
    ran = subprocess.run(["bash", "-c", block], capture_output=True, text=True, timeout=30, check=False)
    assert (ran.returncode, ran.stdout) == (0, "signature ok\n"), ran.stderr


async def test_registering_returns_the_secret_once_and_refuses_what_it_must(
    hub: str, url: str, tokens: dict[str, str], hooks: dict[str, dict]
) -> None:
    assert hooks["late"]["secret"].startswith("whsec_") and len(hooks["late"]["secret"]) > 40
    assert hooks["late"]["webhook"]["events"] == ["BEFORE_DEADLINE", "OVERDUE"]
    key = str(uuid.uuid4())
    first = await gql(hub, tokens["prompt"], REGISTER, url="https://hooks.example.org/a", k=key, events=["OVERDUE"])
    again = await gql(hub, tokens["prompt"], REGISTER, url="https://hooks.example.org/a", k=key, events=["OVERDUE"])
    made, replayed = first["data"]["registerWebhook"], again["data"]["registerWebhook"]
    assert made["secret"] and replayed["secret"] is None  # never stored with the replayable answer
    assert replayed["webhook"] == made["webhook"] and made["webhook"]["events"] == ["OVERDUE"]
    disabled = await gql(
        hub, tokens["prompt"], "mutation($w: Int!, $k: String!) { disableWebhook(webhookId: $w, idempotencyKey: $k) "
        "{ disabled } }", w=made["webhook"]["webhookId"], k=str(uuid.uuid4())
    )  # fmt: skip
    assert disabled["data"] == {"disableWebhook": {"disabled": True}}

    page = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8").split("## Reminders and webhooks", 1)[1]
    documented = await gql(hub, tokens["prompt"], page.split("```graphql not-run\n", 1)[1].split("```", 1)[0])
    assert "errors" not in documented and documented["data"]["registerWebhook"]["secret"], documented

    reader = await token(hub, url, LATE, "data:read")
    cases = [
        (tokens["late"], "http://hooks.example.org/x", "BAD_USER_INPUT"),  # http off loopback
        (tokens["late"], "https://user:pw@hooks.example.org/x", "BAD_USER_INPUT"),
        (tokens["late"], "ftp://hooks.example.org/x", "BAD_USER_INPUT"),
        (reader, "https://hooks.example.org/x", "FORBIDDEN"),
    ]
    for bearer, target, code in cases:
        answer = await gql(hub, bearer, REGISTER, url=target, k=str(uuid.uuid4()))
        assert [e["extensions"]["code"] for e in answer["errors"]] == [code], (target, answer)
    none = await gql(hub, tokens["late"], REGISTER, url="https://hooks.example.org/x", k=str(uuid.uuid4()), events=[])
    assert [e["extensions"]["code"] for e in none["errors"]] == ["BAD_USER_INPUT"], none
    foreign = await gql(
        hub, tokens["receiver"], "mutation($w: Int!, $k: String!) { disableWebhook(webhookId: $w, idempotencyKey: $k) "
        "{ disabled } }", w=hooks["late"]["webhook"]["webhookId"], k=str(uuid.uuid4())
    )  # fmt: skip
    assert foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    async with _connection(url) as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'webhook.register'") == 5
        assert await conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'webhook.disable'") == 1
        assert not await conn.fetchval(
            "SELECT disabled FROM webhook WHERE id = $1", hooks["late"]["webhook"]["webhookId"]
        )


async def test_reminders_before_the_deadline_and_overdue_reach_the_reporter_and_the_receiver_once_signed(
    hub: str, url: str, clock: Clock, tokens: dict[str, str], hooks: dict[str, dict], receiver: Receiver
) -> None:
    receiver.received.clear()
    clock.now = BEFORE
    await settled(receiver, 2)
    clock.now = AFTER
    await settled(receiver, 4)

    got = sorted((r.path, r.body["kind"], r.body["role"], r.body["agency"], r.attempt) for r in receiver.received)
    assert got == [
        ("/late", "BEFORE_DEADLINE", "REPORTER", LATE, 1),
        ("/late", "OVERDUE", "REPORTER", LATE, 1),
        ("/receiver", "BEFORE_DEADLINE", "RECEIVER", LATE, 1),
        ("/receiver", "OVERDUE", "RECEIVER", LATE, 1),
    ]  # PROMPT submitted: it is reminded of nothing, and nobody is reminded about it
    assert all(r.signed for r in receiver.received)
    assert {r.body["period"] for r in receiver.received} == {"2026-M10"}
    assert {r.body["deadline"] for r in receiver.received} == {"2026-11-05T23:59:59.999999+07:00"}
    assert len({r.delivery for r in receiver.received}) == 4
    overdue = next(r for r in receiver.received if r.path == "/late" and r.body["kind"] == "OVERDUE")
    assert overdue.event == "reminder.overdue" and overdue.body["type"] == "reminder.overdue"

    # Each delivery is visible to its own agency with its status, and to no other agency.
    late_id = hooks["late"]["webhook"]["webhookId"]
    shown = await gql(hub, tokens["late"], DELIVERIES, w=late_id)
    nodes = [e["node"] for e in shown["data"]["webhookDeliveries"]["edges"]]
    assert [(n["event"], n["status"], n["attempts"], n["lastStatusCode"]) for n in nodes] == [
        ("reminder.overdue", "DELIVERED", 1, 204),
        ("reminder.before_deadline", "DELIVERED", 1, 204),
    ]
    assert nodes[0]["deliveryId"] == overdue.delivery and nodes[0]["payload"]["agency"] == LATE
    foreign = await gql(hub, tokens["receiver"], DELIVERIES, w=late_id)
    assert foreign["data"] is None and foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    mine = await gql(hub, tokens["late"], "{ webhooks { webhookId url } }")
    assert mine["data"]["webhooks"] == [{"webhookId": late_id, "url": f"{receiver.url}/late"}]
    async with _connection(url) as conn:
        rows = await conn.fetch("SELECT kind, agency_code FROM reminder WHERE regime_code = $1 ORDER BY kind", REGIME)
    assert [(r["kind"], r["agency_code"]) for r in rows] == [("BEFORE_DEADLINE", LATE), ("OVERDUE", LATE)]


async def test_a_failing_receiver_gets_the_same_delivery_until_it_answers_and_subscribers_hear_of_it(
    hub: str, url: str, clock: Clock, hooks: dict[str, dict], receiver: Receiver
) -> None:
    clock.now = AFTER  # 2026-M10 is overdue
    receiver.received.clear()
    receiver.failures["/late"] = 2
    heard: list[str] = []
    async with _connection(url) as listener:
        await listener.add_listener("hub_events", lambda *args: heard.append(args[3]))
        async with _connection(url) as conn:
            async with conn.transaction():  # one commit: the scheduler sees PROMPT as submitted
                await reminded_regime(conn, "WH_NHAC_HAN_2")
                await submitted(conn, "WH_NHAC_HAN_2", PROMPT, "2026-M10")
        await settled(receiver, 4)  # /late: 500, 500, 204; /receiver: 204

    late = receiver.of("/late")
    assert [(r.attempt, r.body["regime"]) for r in late] == [
        (1, "WH_NHAC_HAN_2"),
        (2, "WH_NHAC_HAN_2"),
        (3, "WH_NHAC_HAN_2"),
    ]
    assert len({r.delivery for r in late}) == 1 and all(r.signed for r in receiver.received)
    assert [r.attempt for r in receiver.of("/receiver")] == [1]
    async with _connection(url) as conn:
        row = await conn.fetchrow(
            "SELECT status, attempts, last_status, last_error, delivered_at IS NOT NULL AS delivered"
            " FROM webhook_delivery WHERE id = $1",
            late[0].delivery,
        )
    assert dict(row) == {
        "status": "DELIVERED",
        "attempts": 3,
        "last_status": 204,
        "last_error": None,
        "delivered": True,
    }
    events = [e for e in map(orjson.loads, heard) if e.get("regime") == "WH_NHAC_HAN_2"]
    assert [(e["type"], e["regime"], e["agency"], e["period"]) for e in events] == [
        ("reminder.overdue", "WH_NHAC_HAN_2", LATE, "2026-M10")
    ]  # keys only, like the workflow's events


async def test_a_private_address_is_refused_and_the_delivery_given_up(
    hub: str, url: str, clock: Clock, tokens: dict[str, str], receiver: Receiver
) -> None:
    clock.now = AFTER  # 2026-M10 is overdue
    answer = await gql(hub, tokens["receiver"], REGISTER, url="https://10.1.2.3/hook", k=str(uuid.uuid4()))
    webhook_id = answer["data"]["registerWebhook"]["webhook"]["webhookId"]
    async with _connection(url) as conn:
        async with conn.transaction():  # one commit: the scheduler sees PROMPT as submitted
            await reminded_regime(conn, "WH_NHAC_HAN_3")
            await submitted(conn, "WH_NHAC_HAN_3", PROMPT, "2026-M10")
    async with asyncio.timeout(15):
        while True:
            shown = await gql(hub, tokens["receiver"], DELIVERIES, w=webhook_id, s="FAILED")
            nodes = [e["node"] for e in shown["data"]["webhookDeliveries"]["edges"]]
            if nodes:
                break
            await asyncio.sleep(0.1)
    assert [(n["attempts"], n["lastStatusCode"]) for n in nodes] == [(FAST["webhook_max_attempts"], None)]
    assert "resolves to 10.1.2.3, which webhooks may not reach" in nodes[0]["lastError"]


async def test_two_hubs_on_one_database_have_one_leader_and_send_each_delivery_once(
    hub: str, url: str, clock: Clock, receiver: Receiver
) -> None:
    clock.now = AFTER  # 2026-M10 is overdue
    receiver.received.clear()
    async with serving_hub(url, clock=clock, **FAST), serving_hub(url, clock=clock, **FAST):
        async with _connection(url) as conn:
            await asyncio.sleep(0.5)  # every scheduler has tried for the lock
            holders = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND ((classid::bigint << 32) | objid::bigint) = $1 AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())",
                LEADER_LOCK_KEY,
            )
            assert holders == 1
            async with conn.transaction():  # one commit: the scheduler sees PROMPT as submitted
                await reminded_regime(conn, "WH_NHAC_HAN_4")
                await submitted(conn, "WH_NHAC_HAN_4", PROMPT, "2026-M10")
            await settled(receiver, 2)
    assert sorted((r.path, r.attempt) for r in receiver.received) == [("/late", 1), ("/receiver", 1)]


async def test_subscribers_hear_a_reminder_if_it_concerns_their_agency(
    hub: str, url: str, clock: Clock, tokens: dict[str, str], receiver: Receiver
) -> None:
    clock.now = AFTER  # 2026-M10 is overdue
    from tests.reports.test_live import connected, next_payload, nothing_within, start

    query = (
        'subscription { submissionEvents(regime: "WH_NHAC_HAN_5") '
        "{ resync type submissionId regime period agency status } }"
    )
    async with _connection(url) as conn, conn.transaction():  # before subscribing: nobody owes anything yet
        await reminded_regime(conn, "WH_NHAC_HAN_5")
        await submitted(conn, "WH_NHAC_HAN_5", PROMPT, "2026-M10")
        await submitted(conn, "WH_NHAC_HAN_5", LATE, "2026-M10")
    async with (
        connected(hub, tokens["late"]) as late,
        connected(hub, tokens["receiver"]) as receiving,
        connected(hub, tokens["prompt"]) as prompt,
    ):
        for ws in (late, receiving, prompt):
            await start(ws, query)
            await asyncio.sleep(0.3)  # subscribed
        async with _connection(url) as conn:  # returned: owed again
            await conn.execute(
                "UPDATE submission SET status = 'RETURNED', return_reason = 'incomplete', reviewed_by = 'reviewer',"
                " reviewed_at = now() WHERE regime_code = 'WH_NHAC_HAN_5' AND agency_code = $1",
                LATE,
            )
        expected = {
            "resync": False,
            "type": "reminder.overdue",
            "submissionId": None,
            "regime": "WH_NHAC_HAN_5",
            "period": "2026-M10",
            "agency": LATE,
            "status": None,
        }
        assert (await next_payload(late))["data"]["submissionEvents"] == expected
        assert (await next_payload(receiving))["data"]["submissionEvents"] == expected
        assert await nothing_within(prompt, 1.0)  # a fellow reporter is not told who is late


async def test_operators_list_webhooks_and_deliveries_without_secrets(
    hub: str, url: str, clock: Clock, hooks: dict[str, dict]
) -> None:
    clock.now = AFTER
    listed = await run_nrhub("webhooks", "list", "--agency", LATE, "--json", database_url=url)
    assert listed.returncode == 0, listed.stderr
    webhooks = json.loads(listed.stdout)
    assert [(w["id"], w["agency"], w["disabled"]) for w in webhooks] == [
        (hooks["late"]["webhook"]["webhookId"], LATE, False)
    ]
    assert hooks["late"]["secret"] not in listed.stdout and "secret" not in webhooks[0]
    async with _connection(url) as conn, asyncio.timeout(15):  # run alone, the reminders are sent now
        while not await conn.fetchval("SELECT count(*) FROM webhook_delivery WHERE status = 'DELIVERED'"):
            await asyncio.sleep(0.1)
    shown = await run_nrhub("webhooks", "deliveries", str(webhooks[0]["id"]), "--status", "DELIVERED", database_url=url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines and all("\tDELIVERED\t" in line for line in lines), shown.stdout
    missing = await run_nrhub("webhooks", "deliveries", "987654", database_url=url)
    assert (missing.returncode, missing.stderr) == (1, "nrhub: error: there is no webhook 987654\n")


async def test_the_documented_registration_runs_verbatim(hub: str, tokens: dict[str, str]) -> None:
    """docs/reports.md's registerWebhook block is marked not-run (the docs' reader has no reports scope): run here."""
    from tests.docs.test_examples import GRAPHQL

    (example,) = [e for e in GRAPHQL if e.page.name == "reports.md" and "registerWebhook" in e.text]
    answer = await gql(hub, tokens["late"], example.text)
    assert "errors" not in answer, answer
    registered = answer["data"]["registerWebhook"]
    assert registered["webhook"]["url"] == "https://bao-cao.example.gov.vn/hooks/nrhub" and registered["secret"]
