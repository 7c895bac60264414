"""A real webhook receiver on 127.0.0.1 and a regime to be reminded of, for the reminder tests.

The receiver checks every request's signature with the Python snippet of docs/reports.md
("Reminders and webhooks"), run verbatim, so the documented check is the one the tests rely on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import ROOT, server_socket

REGIME = "WH_NHAC_HAN"  # monthly, due on the 5th of the next month (Vietnam time)
RECEIVER = "WHNHAN"  # the receiving agency
LATE = "WHCHAM"  # a reporter that has not submitted
PROMPT = "WHDUNGHAN"  # a reporter that has submitted


@functools.cache
def documented_verify() -> Callable[..., bool]:
    """``verify`` from the snippet in docs/reports.md, executed as the page shows it."""
    page = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    section = page.split("## Reminders and webhooks", 1)[1]
    code = re.search(r"python3 - <<'EOF'\n(.*?)\nEOF\n", section, re.S)
    assert code is not None, "docs/reports.md has no verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(code[1], "docs/reports.md", "exec"), namespace)  # the documented code, as written
    return namespace["verify"]


@dataclass
class Received:
    path: str
    delivery: int
    attempt: int
    event: str
    body: dict[str, Any]
    signed: bool  # the documented check passed with the path's secret


@dataclass
class Receiver:
    """Records every request; answers each path as told (a status, or holds it open until released)."""

    url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)  # path -> the webhook's secret
    failures: dict[str, int] = field(default_factory=dict)  # path -> how many 500s to answer first
    hold: bool = False  # keep requests open (the hub is killed meanwhile)
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        verify = documented_verify()
        signed = path in self.secrets and verify(self.secrets[path], request.headers, body)
        self.received.append(
            Received(
                path,
                int(request.headers["x-hub-delivery"]),
                int(request.headers["x-hub-attempt"]),
                request.headers["x-hub-event"],
                orjson.loads(body),
                signed,
            )
        )
        self.arrived.set()
        if self.hold:
            await self.released.wait()
        if self.failures.get(path, 0) > 0:
            self.failures[path] -= 1
            return Response("try later", status_code=500)
        return Response(status_code=204)

    def of(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@contextlib.asynccontextmanager
async def serving_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{name}", receiver.endpoint, methods=["POST"])])
    sock = server_socket()
    receiver.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.02)
        yield receiver
    finally:
        receiver.released.set()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


_AGENCY = """
INSERT INTO agency (code, short_code, name_vi, name_en, kind, valid_from)
VALUES ($1, $1, $1, $1, 'PARTNER', '2020-01-01') ON CONFLICT DO NOTHING
"""
_REGIME = """
INSERT INTO regime (code, name_vi, name_en, legal_basis, issuing_agency, receiving_agency, frequency,
                    deadline_rule, deadline_value)
VALUES ($1, 'Nhắc hạn', 'Reminder test', 'test', $2, $2, $3, 'DAY_OF_NEXT_MONTH', 5)
"""


async def reminded_regime(conn: asyncpg.Connection, code: str = REGIME, frequency: str = "M") -> None:
    """A regime of agencies of its own (so that no demo regime reminds them), two reporters."""
    for agency in (RECEIVER, LATE, PROMPT):
        await conn.execute(_AGENCY, agency)
    await conn.execute(_REGIME, code, RECEIVER, frequency)
    await conn.execute(
        "INSERT INTO regime_reporter (regime_code, agency_code) VALUES ($1, $2), ($1, $3)", code, LATE, PROMPT
    )


async def submitted(conn: asyncpg.Connection, regime: str, agency: str, period: str) -> None:
    """A submitted report of ``agency`` (written directly: the workflow's rules are not under test here)."""
    await conn.execute(
        "INSERT INTO submission (regime_code, agency_code, unit_id, period, status, created_by, deadline,"
        " submitted_at, on_time, submitted_by)"
        " SELECT $1, $2, id, $3, 'SUBMITTED', 'test', now() + interval '1 day', now(), true, 'test'"
        " FROM admin_unit WHERE level = 'NATION'",
        regime,
        agency,
        period,
    )


async def add_webhook(conn: asyncpg.Connection, agency: str, url: str, secret: str) -> int:
    """A webhook written directly (the fault test's hub runs in another process, without tokens)."""
    webhook_id = await conn.fetchval(
        "INSERT INTO webhook (agency_code, url, events, created_by, created_at)"
        " VALUES ($1, $2, ARRAY['BEFORE_DEADLINE', 'OVERDUE'], 'test', now()) RETURNING id",
        agency,
        url,
    )
    await conn.execute("INSERT INTO webhook_secret (webhook_id, secret) VALUES ($1, $2)", webhook_id, secret)
    return int(webhook_id)
