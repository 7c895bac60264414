"""Live updates under stress: PostgreSQL restarted mid-stream, two hub processes, a consumer that stops
reading, a token that expires while connected, and the per-connection and per-client caps.

Real PostgreSQL, real hub processes (``nrhub serve`` children, or uvicorn in this event loop), real
WebSocket clients on 127.0.0.1. These tests change data, so they run on a demo database of their own
(the PostgreSQL restart on a private server of its own); every test is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
import uvicorn
import websockets
from joserfc.jwk import ECKey
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import ConnectionClosed
from websockets.server import ServerProtocol

from nrhub.auth.clients import create_client
from nrhub.auth.keys import ensure_signing_key
from nrhub.auth.tokens import issue_access_token
from nrhub.config.settings import Settings
from nrhub.db.migrate import migrate
from nrhub.demo.load import load_demo
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.audit import Actor
from nrhub.resolvers.events import QUEUE_SIZE
from nrhub.schema.context import Context
from nrhub.web import ws as ws_endpoint
from nrhub.web.app import create_app
from nrhub.web.connection_guard import GuardedHttpProtocol
from tests.conftest import server_socket, serving_hub
from tests.reports.test_lifecycle import MONTHLY_CELLS, REVIEW, SUBMIT, fill_monthly, previous_values
from tests.reports.test_live import SUBMISSIONS, connected, next_payload, start

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = "BC_KTXH_THANG"
NOW = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)
SLOW_REASON = "did not keep up"
# Subscriptions register with the event hub a moment after subscribe (their first step reads the database).
REGISTERED = 0.5


def bounded(seconds: float) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Fail the test, instead of hanging the suite, when it runs longer than ``seconds``."""

    def wrap(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            async with asyncio.timeout(seconds):
                await test(*args, **kwargs)

        return run

    return wrap


# --- A demo database of this module's own, and hubs on it --------------------------------------------------------------


@pytest.fixture(scope="module")
async def own_url(new_demo_database) -> str:
    """A superuser's URL of a migrated demo database only these tests use."""
    return str(await new_demo_database())


@pytest.fixture(scope="module")
async def own_pool(own_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(own_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


def _free_socket() -> socket.socket:
    sock = server_socket()
    return sock


@contextlib.asynccontextmanager
async def in_process_hub(
    database_url: str, *, uvicorn_options: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[str]:
    """The hub's app under uvicorn in this event loop, on 127.0.0.1; yields its base URL."""
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = Settings(port=port, graphiql=False, issuer=f"http://127.0.0.1:{port}", token_rate_limit=10_000, **settings)
    app = create_app(config, database_url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **(uvicorn_options or {})))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(15):
                await task
        sock.close()


@dataclass
class HubProcess:
    url: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


@contextlib.asynccontextmanager
async def hub_process(database_url: str, log_dir: Path, **settings: str) -> AsyncIterator[HubProcess]:
    """``nrhub serve`` (python -m nrhub.cli serve) as a child process on the database; stopped with SIGINT."""
    with _free_socket() as probe:
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=database_url,
        HUB_HOST="127.0.0.1",
        HUB_PORT=str(port),
        HUB_LOG_LEVEL="warning",
        HUB_GRAPHIQL="false",
        HUB_TOKEN_RATE_LIMIT="10000",
    )
    env.update({f"HUB_{k.upper()}": v for k, v in settings.items()})
    log = log_dir / f"hub-{port}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nrhub.cli", "serve", cwd=ROOT, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as http, asyncio.timeout(60):
            while True:
                if process.returncode is not None:
                    raise AssertionError(f"nrhub serve exited with {process.returncode}:\n{log.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield HubProcess(url, process, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.fixture(scope="module")
async def two_hubs(own_url: str, tmp_path_factory) -> AsyncIterator[tuple[HubProcess, HubProcess]]:
    """Two ``nrhub serve`` processes on the module's database."""
    logs = tmp_path_factory.mktemp("hub-logs")
    async with hub_process(own_url, logs) as first, hub_process(own_url, logs) as second:
        yield first, second


# --- Clients, tokens and reports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str

    async def token(self, hub: str) -> str:
        """A token from ``hub``'s own token endpoint (each hub is its own issuer)."""
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(self.client_id, self.secret)
            )
        response.raise_for_status()
        return str(response.json()["access_token"])


async def new_client(pool: asyncpg.Pool, agency: str, scopes: str) -> Client:
    async with pool.acquire() as conn:
        client, secret = await create_client(conn, agency=agency, scopes=scopes.split())
    return Client(client.client_id, secret or "")


def gql_at(hub: str) -> Callable[..., Awaitable[dict]]:
    async def call(token: str, query: str, **variables: object) -> dict:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{hub}/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
        return dict(response.json())

    return call


async def submitted_report(pool: asyncpg.Pool, province: str, period: str) -> tuple[int, int]:
    """A province's monthly report opened, filled and submitted through the workflow functions: (id, unit id).

    Its own NOTIFY goes out too; the tests below start listening afterwards.
    """
    actor = Actor(agency=f"UBND_{province}", client=f"test-{province}", user=None, request_id=uuid.uuid4().hex)
    base = await previous_values(pool, province, "2026-M10")
    cells = [workflow.CellValue(c, "", base.get(c, Decimal(10)) + 1) for c in MONTHLY_CELLS]
    async with pool.acquire() as conn:
        async with conn.transaction():
            draft = await workflow.open_draft(conn, actor, regime=MONTHLY, period=period, now=NOW)
        async with conn.transaction():
            _, problems = await workflow.save_values(conn, actor, draft.id, cells, now=NOW)
        assert problems == []
        async with conn.transaction():
            await workflow.submit(conn, actor, draft.id, now=NOW)
    return draft.id, draft.unit_id


def event_payload(submission: int, unit: int, province: str, period: str, n: int = 0, kind: str = "submitted") -> str:
    """What the workflow sends on hub_events, plus a sequence number (PostgreSQL folds identical payloads)."""
    return json.dumps(
        {
            "type": f"submission.{kind}",
            "submission": submission,
            "regime": MONTHLY,
            "period": period,
            "agency": f"UBND_{province}",
            "unit": unit,
            "n": n,
        }
    )


async def notify_all(conn: asyncpg.Connection, payloads: list[str]) -> None:
    """One transaction: the notifications reach the listeners together, at commit."""
    await conn.execute("SELECT pg_notify('hub_events', p) FROM unnest($1::text[]) AS p", payloads)


async def closed_with(ws: websockets.ClientConnection, seconds: float) -> tuple[int | None, str, int]:
    """Read until the server closes: (close code, reason, messages read before it)."""
    read = 0
    try:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
                read += 1
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else None), (closed.rcvd.reason if closed.rcvd else ""), read
    except TimeoutError:
        raise AssertionError(f"not closed within {seconds} s; {read} messages read") from None
    raise AssertionError("unreachable")


# --- 1. PostgreSQL restarted mid-stream ------------------------------------------------------------------------------


class RestartablePostgres:
    """A private server from pgserver (as root its binaries run as the user ``pgserver``), restarted in place:
    stopped in ``fast`` mode, which ends every client session, and started again on the same socket."""

    def __init__(self, root: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pgserver computes a runtime folder when imported
            import pgserver
            from pgserver import _commands

        self._pg_ctl = _commands.pg_ctl
        self._postmaster = pgserver.utils.PostmasterInfo.read_from_pgdata
        self.pgdata = root / "pgdata"
        self.server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        self.user = self.server.system_user
        self.socket_dir = self.server.get_postmaster_info().socket_dir
        self.url = self.server.get_uri()

    def _ctl(self, *args: str) -> None:
        try:
            self._pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=90)
        except subprocess.CalledProcessError as exc:
            log = self.pgdata / "log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
            raise AssertionError(f"pg_ctl {' '.join(args)} failed ({exc.returncode}):\n{tail}") from None

    def postmaster_pid(self) -> int | None:
        info = self._postmaster(self.pgdata)
        return info.pid if info is not None else None

    def restart(self) -> None:
        self._ctl("-w", "-t", "60", "-m", "fast", "stop")
        log = str(self.pgdata / "log")
        self._ctl("-w", "-t", "60", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start")

    def remove(self) -> None:
        # pgserver stops only the server it started itself, whose pid is gone after the restart: stop the
        # running one here, and let pgserver's own clean-up find its process gone (psutil raises
        # NoSuchProcess when that process has already been reaped, depending on timing).
        with contextlib.suppress(Exception):
            self._ctl("-w", "-t", "60", "-m", "immediate", "stop")
        with contextlib.suppress(psutil.NoSuchProcess):
            self.server.cleanup()


@bounded(150)
async def test_postgresql_restarted_mid_stream_resyncs_subscribers_without_reconnecting() -> None:
    # Not under pytest's tmp_path: a pytest starting meanwhile resets /tmp/pytest-of-<user> to 0700, and the
    # server's user could no longer reach its folder.
    root = Path(tempfile.mkdtemp(prefix="nrhub-live-restart-"))
    try:
        await _restart_on_private_server(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _restart_on_private_server(root: Path) -> None:
    postgres = await asyncio.to_thread(RestartablePostgres, root)
    try:
        conn = await asyncpg.connect(postgres.url)
        try:
            await migrate(conn)
            await load_demo(conn, scale="small")
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(postgres.url, min_size=1, max_size=2)
        assert pool is not None
        try:
            async with in_process_hub(postgres.url) as hub:
                await _restart_mid_stream(hub, pool, postgres)
        finally:
            await pool.close()
    finally:
        await asyncio.to_thread(postgres.remove)


async def _restart_mid_stream(hub: str, pool: asyncpg.Pool, postgres: RestartablePostgres) -> None:
    gql = gql_at(hub)
    province = await (await new_client(pool, "UBND_75", "reports:submit")).token(hub)
    office = await (await new_client(pool, "VPCP", "reports:review audit:read")).token(hub)
    watcher = await (await new_client(pool, "VPCP", "audit:read")).token(hub)
    async with connected(hub, watcher) as ws:
        await start(ws, SUBMISSIONS)
        await asyncio.sleep(REGISTERED)
        submission = await fill_monthly(gql, province, pool, "75", "2026-M11")
        await gql(province, SUBMIT, s=submission, k=str(uuid.uuid4()))
        before = (await next_payload(ws))["data"]["submissionEvents"]
        assert (before["type"], before["submissionId"], before["resync"]) == ("submission.submitted", submission, False)

        old_pid = postgres.postmaster_pid()
        await asyncio.to_thread(postgres.restart)
        assert postgres.postmaster_pid() not in (None, old_pid)
        resync = json.loads(await asyncio.wait_for(ws.recv(), 20))  # the listener reconnects with back-off
        assert resync["type"] == "next", resync
        assert resync["payload"]["data"]["submissionEvents"] == {
            "resync": True,
            "type": None,
            "submissionId": None,
            "agency": None,
            "status": None,
            "onTime": None,
        }

        # New events after the restart reach the same socket; the hub's pool reconnects on use.
        accepted = await gql(office, REVIEW, s=submission, d="ACCEPT", k=str(uuid.uuid4()))
        assert accepted.get("data", {}).get("reviewReport", {}).get("status") == "ACCEPTED", accepted
        after = (await next_payload(ws))["data"]["submissionEvents"]
        assert (after["type"], after["submissionId"], after["status"], after["resync"]) == (
            "submission.accepted",
            submission,
            "ACCEPTED",
            False,
        )
        another = await (await new_client(pool, "UBND_96", "reports:submit")).token(hub)
        other = await fill_monthly(gql, another, pool, "96", "2026-M11")
        await gql(another, SUBMIT, s=other, k=str(uuid.uuid4()))
        later = (await next_payload(ws))["data"]["submissionEvents"]
        assert (later["type"], later["submissionId"]) == ("submission.submitted", other)


# --- 2. Across processes ---------------------------------------------------------------------------------------------


@bounded(90)
async def test_a_report_accepted_through_one_process_reaches_subscribers_of_the_other(two_hubs, own_pool) -> None:
    first, second = two_hubs
    province = await new_client(own_pool, "UBND_80", "reports:submit")
    office = await new_client(own_pool, "VPCP", "reports:review audit:read")
    watcher = await new_client(own_pool, "VPCP", "audit:read")
    on_first, on_second = await watcher.token(first.url), await watcher.token(second.url)
    async with connected(first.url, on_first) as here, connected(second.url, on_second) as there:
        await start(here, SUBMISSIONS)
        await start(there, SUBMISSIONS)
        await asyncio.sleep(REGISTERED)
        # Submitted through the first process, accepted through the second.
        submitter = await province.token(first.url)
        submission = await fill_monthly(gql_at(first.url), submitter, own_pool, "80", "2026-M11")
        submitted = await gql_at(first.url)(submitter, SUBMIT, s=submission, k=str(uuid.uuid4()))
        assert submitted["data"]["submitReport"]["status"] == "SUBMITTED", submitted
        for ws in (here, there):
            event = (await next_payload(ws))["data"]["submissionEvents"]
            assert (event["type"], event["submissionId"], event["agency"], event["status"]) == (
                "submission.submitted",
                submission,
                "UBND_80",
                "SUBMITTED",
            )
        reviewed = await gql_at(second.url)(
            await office.token(second.url), REVIEW, s=submission, d="ACCEPT", k=str(uuid.uuid4())
        )
        assert reviewed["data"]["reviewReport"]["status"] == "ACCEPTED", reviewed
        for ws in (here, there):
            event = (await next_payload(ws))["data"]["submissionEvents"]
            assert (event["type"], event["submissionId"], event["status"], event["resync"]) == (
                "submission.accepted",
                submission,
                "ACCEPTED",
                False,
            )


# --- 3. A consumer that stops reading ---------------------------------------------------------------------------------

FLOOD = 10_000
BATCH = 100  # per transaction: well below the queue of 256, so a subscriber that reads keeps up
# About 1 KB per event (the hub allows 30 aliases by default), sent uncompressed: the socket buffers of a
# subscriber that stops reading fill after a few thousand events (measured: about 3,000).
WIDE = (
    'subscription { submissionEvents(regime: "BC_KTXH_THANG") { '
    + " ".join(f"t{i}: submittedAt" for i in range(25))
    + " } }"
)


@contextlib.asynccontextmanager
async def stalled(hub: str, token: str) -> AsyncIterator[websockets.ClientConnection]:
    """A subscriber whose socket stops being read as soon as the test stops calling recv: a small receive
    buffer, the client library's queue of one message, no compression (permessage-deflate shrinks repeated
    events to a few bytes each, and the kernel would absorb the whole flood)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    host, port = hub.removeprefix("http://").split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    url = hub.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url,
        sock=sock,
        subprotocols=["graphql-transport-ws"],
        max_queue=1,
        ping_interval=None,
        compression=None,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        yield ws


class Reader:
    """Reads a subscriber's socket in the background and counts the events."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.received = 0
        self.closed: Any = None
        self._task = asyncio.create_task(self._read(ws))

    async def _read(self, ws: websockets.ClientConnection) -> None:
        try:
            async for message in ws:
                event = json.loads(message)
                assert event["type"] == "next", event
                self.received += 1
        except ConnectionClosed as closed:
            self.closed = closed.rcvd or "closed"

    async def caught_up(self, count: int, seconds: float = 20) -> None:
        async with asyncio.timeout(seconds):
            while self.received < count:
                assert self.closed is None, f"the subscriber that reads was closed after {self.received}: {self.closed}"
                await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._task.cancel()


async def flood(
    notifier: asyncpg.Connection,
    report: tuple[int, int, str],
    first: int,
    count: int,
    *,
    reader: Reader | None = None,
    per_event: int = 1,
    pause: float = 0.0,
) -> None:
    """Notifications ``first`` to ``first + count - 1`` in transactions of BATCH; with a ``reader`` (which counts
    from notification 0), each batch is read before the next."""
    submission, unit, province = report
    for sent in range(first, first + count, BATCH):
        batch = range(sent, min(sent + BATCH, first + count))
        await notify_all(notifier, [event_payload(submission, unit, province, "2026-M11", n) for n in batch])
        if reader is not None:
            await reader.caught_up(batch.stop * per_event)  # events are numbered from 0 for the reader
        if pause:
            await asyncio.sleep(pause)


@bounded(150)
async def test_a_consumer_that_stops_reading_is_closed_while_the_others_keep_receiving(
    two_hubs, own_pool, own_url
) -> None:
    hub = two_hubs[0]
    report = (*await submitted_report(own_pool, "82", "2026-M11"), "82")
    slow_token = await (await new_client(own_pool, "VPCP", "audit:read")).token(hub.url)
    fast_token = await (await new_client(own_pool, "VPCP", "audit:read")).token(hub.url)
    notifier = await asyncpg.connect(own_url)
    try:
        async with stalled(hub.url, slow_token) as slow, connected(hub.url, fast_token) as fast:
            await start(slow, WIDE)
            await start(fast, SUBMISSIONS)
            await asyncio.sleep(REGISTERED)
            reader = Reader(fast)
            rss_before, started = hub.rss_kib(), time.monotonic()
            await flood(notifier, report, 0, FLOOD, reader=reader)
            flood_seconds, rss_after = time.monotonic() - started, hub.rss_kib()
            # The one that reads keeps receiving, also after the other was cut off.
            await flood(notifier, report, FLOOD, 1)
            await reader.caught_up(FLOOD + 1)
            # The one that stopped reading finds, once it reads again, a bounded backlog and then its close.
            code, reason, backlog = await closed_with(slow, 30)
            reader.stop()
        print(
            f"\n{FLOOD} events in {flood_seconds:.1f} s: the stalled subscriber had {backlog} waiting, then {code}"
            f" {reason!r}; hub RSS {rss_before} -> {rss_after} KiB"
        )
        assert code == 1008, (code, reason)
        assert SLOW_REASON in reason
        # Had the hub kept every event for it, all FLOOD would be waiting: what waits is the socket buffers'
        # worth, and no more than the subscriber's queue beyond it.
        assert 0 < backlog < FLOOD - QUEUE_SIZE, backlog
    finally:
        await notifier.close()


@bounded(120)
async def test_memory_stays_flat_while_subscribers_receive_a_long_stream(two_hubs, own_pool, own_url) -> None:
    hub = two_hubs[1]
    report = (*await submitted_report(own_pool, "86", "2026-M11"), "86")
    token = await (await new_client(own_pool, "VPCP", "audit:read")).token(hub.url)
    subscriptions, warm_up, events = 10, 300, 1_500
    notifier = await asyncpg.connect(own_url)
    try:
        async with connected(hub.url, token) as ws:
            for _ in range(subscriptions):
                await start(ws, SUBMISSIONS)
            await asyncio.sleep(REGISTERED)
            reader = Reader(ws)
            await flood(notifier, report, 0, warm_up, reader=reader, per_event=subscriptions)
            rss_warm = hub.rss_kib()
            await flood(notifier, report, warm_up, events, reader=reader, per_event=subscriptions)
            rss_after = hub.rss_kib()
            reader.stop()
    finally:
        await notifier.close()
    deliveries = subscriptions * events
    grown = rss_after - rss_warm
    print(f"\n{deliveries} deliveries after warm-up: hub RSS {rss_warm} -> {rss_after} KiB")
    # The hub keeps at most QUEUE_SIZE events per subscriber; nothing should grow with the events delivered.
    assert grown < 8 * 1024, (
        f"RSS grew {grown} KiB over {deliveries} deliveries ({grown * 1024 / deliveries:.0f} B each)"
    )


@bounded(90)
async def test_a_consumer_that_never_reads_again_ends_without_an_internal_error(own_pool, own_url, caplog) -> None:
    """Cut off while not reading, the consumer cannot be sent its close frame (the hub's writes wait for the
    socket); the transport's keepalive (here 5 s ping and 5 s timeout, uvicorn's default 20 + 20) ends it,
    with 1011. That is the transport's doing, not a failure of the hub, and must not be logged as one
    (it was, with a RuntimeError and an unretrieved task exception, before 8b768b0)."""
    report = (*await submitted_report(own_pool, "92", "2026-M11"), "92")
    notifier = await asyncpg.connect(own_url)
    caplog.set_level(logging.WARNING)
    try:
        async with in_process_hub(own_url, uvicorn_options={"ws_ping_interval": 5, "ws_ping_timeout": 5}) as hub:
            token = await (await new_client(own_pool, "VPCP", "audit:read")).token(hub)
            async with stalled(hub, token) as slow:
                await start(slow, WIDE)
                await asyncio.sleep(REGISTERED)
                started = time.monotonic()
                await flood(notifier, report, 0, 6_000, pause=0.1)  # about 1,000 events a second
                await asyncio.sleep(max(0.0, started + 15 - time.monotonic()))  # past the keepalive's limit
                code, reason, backlog = await closed_with(slow, 30)
                await asyncio.sleep(0.5)  # the hub's operation wakes up as the socket drains
            gc.collect()  # an unretrieved task exception is reported when the task is collected
    finally:
        await notifier.close()
    print(f"\nthe stalled subscriber had {backlog} waiting, then {code} {reason!r}")
    assert 0 < backlog < 6_000 - QUEUE_SIZE and code in (1008, 1011), (backlog, code, reason)
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


# --- 4. Token expiry -------------------------------------------------------------------------------------------------


@bounded(60)
async def test_token_expiring_while_connected_closes_with_4403_at_its_expiry(capped_hub, own_pool) -> None:
    client = await new_client(own_pool, "VPCP", "audit:read")
    async with own_pool.acquire() as conn:
        await ensure_signing_key(conn)
        jwk = await conn.fetchval(
            "SELECT private_jwk::text FROM signing_key WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"
        )
    key = ECKey.import_key(json.loads(jwk))
    now = int(time.time())
    token, _ = issue_access_token(
        key,
        issuer=capped_hub,
        audience=f"{capped_hub}/graphql",
        subject=client.client_id,
        client_id=client.client_id,
        scope="audit:read",
        lifetime=3,
        now=now,
    )
    expires_at = now + 3
    async with connected(capped_hub, token) as ws:
        await start(ws, SUBMISSIONS)
        await asyncio.sleep(max(0.0, expires_at - 1 - time.time()))
        await ws.send(json.dumps({"type": "ping"}))  # a second before expiry: still served
        assert json.loads(await asyncio.wait_for(ws.recv(), 2)) == {"type": "pong"}
        code, reason, read = await closed_with(ws, 10)
        closed_at = time.time()
    assert (code, read) == (4403, 0), (code, reason)
    assert "expired" in reason
    assert expires_at - 0.2 <= closed_at <= expires_at + 1.5, closed_at - expires_at


# --- 5. Caps ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def capped_hub(own_url: str) -> AsyncIterator[str]:
    async with in_process_hub(own_url, ws_max_subscriptions=2, ws_max_connections_per_client=2) as url:
        yield url


@bounded(60)
async def test_subscriptions_per_connection_are_capped(capped_hub, own_pool, own_url) -> None:
    submission, unit = await submitted_report(own_pool, "91", "2026-M11")
    office = await (await new_client(own_pool, "VPCP", "audit:read")).token(capped_hub)
    async with connected(capped_hub, office) as ws:
        first, second = await start(ws, SUBMISSIONS), await start(ws, SUBMISSIONS)
        third = await start(ws, SUBMISSIONS)
        refused = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (refused["id"], refused["type"]) == (third, "error"), refused
        assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert "at most 2 subscriptions" in refused["payload"][0]["message"]
        await asyncio.sleep(REGISTERED)

        # The two within the cap still deliver.
        notifier = await asyncpg.connect(own_url)
        try:
            await notify_all(notifier, [event_payload(submission, unit, "91", "2026-M11", 1)])
            delivered = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
            assert sorted(m["id"] for m in delivered) == sorted([first, second])
            assert all(m["payload"]["data"]["submissionEvents"]["submissionId"] == submission for m in delivered)

            # Completing one frees its place.
            await ws.send(json.dumps({"id": first, "type": "complete"}))
            fourth = await start(ws, SUBMISSIONS)
            await asyncio.sleep(REGISTERED)
            await notify_all(notifier, [event_payload(submission, unit, "91", "2026-M11", 2)])
            delivered = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
            assert sorted(m["id"] for m in delivered) == sorted([second, fourth]), delivered
            assert all(m["type"] == "next" for m in delivered)
        finally:
            await notifier.close()


@bounded(60)
async def test_connections_per_client_are_capped(capped_hub, own_pool) -> None:
    client = await new_client(own_pool, "VPCP", "audit:read")
    tokens = [await client.token(capped_hub) for _ in range(3)]  # one client, three tokens
    other = await (await new_client(own_pool, "VPCP", "audit:read")).token(capped_hub)
    url = capped_hub.replace("http://", "ws://") + "/graphql"
    async with connected(capped_hub, tokens[0]) as one, connected(capped_hub, tokens[1]):
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as third:
            await third.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {tokens[2]}"}})
            )
            code, reason, read = await closed_with(third, 5)
        assert (code, read) == (4429, 0), (code, reason)
        assert "at most 2 connections per client" in reason
        # Another client is not affected, and the first connections still work.
        async with connected(capped_hub, other):
            pass
        await one.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(one.recv(), 5)) == {"type": "pong"}
        await one.close()
        await asyncio.sleep(0.5)  # the hub lets go of the closed connection
        async with connected(capped_hub, tokens[2]) as again:  # its place is free again
            await again.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(again.recv(), 5)) == {"type": "pong"}


# --- 6. A binary frame (found by the benchmark) -----------------------------------------------------------------------


@bounded(30)
async def test_a_binary_frame_is_a_bad_message(capped_hub, own_pool) -> None:
    """graphql-transport-ws messages are text; a client that sends a binary frame gets 4400, like any bad
    message (found when the benchmark's first client sent orjson's bytes: before 8b768b0 the hub raised
    KeyError in receive_text and dropped the socket without a close frame)."""
    token = await (await new_client(own_pool, "VPCP", "audit:read")).token(capped_hub)
    async with connected(capped_hub, token) as ws:
        await ws.send(json.dumps({"type": "ping"}).encode())
        code, reason, read = await closed_with(ws, 5)
    assert (code, read) == (4400, 0), (code, reason)


async def _anonymous_init(url: str, source: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"], local_addr=(source, 0))
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    return ws


@bounded(60)
async def test_anonymous_connections_are_capped_per_address_not_all_together(capped_hub) -> None:
    """Anonymous callers share no client: each address (here two loopback addresses) has a client's cap."""
    url = capped_hub.replace("http://", "ws://") + "/graphql"
    opened = [await _anonymous_init(url, "127.0.0.1") for _ in range(2)]
    try:
        for ws in opened:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        third = await _anonymous_init(url, "127.0.0.1")
        code, reason, read = await closed_with(third, 5)
        assert (code, read) == (4429, 0), (code, reason)
        elsewhere = await _anonymous_init(url, "127.0.0.2")
        try:
            assert json.loads(await asyncio.wait_for(elsewhere.recv(), 5))["type"] == "connection_ack"
        finally:
            await elsewhere.close()
    finally:
        for ws in opened:
            await ws.close()


@bounded(60)
async def test_anonymous_connections_have_a_ceiling_across_addresses(own_url, own_pool) -> None:
    """One host can hold many addresses, so anonymous callers also share a ceiling; a caller with a token is
    never refused for what anonymous callers hold, and a closed anonymous connection frees its place."""
    async with in_process_hub(own_url, ws_max_connections_per_client=2, ws_max_anonymous_connections=3) as hub:
        url = hub.replace("http://", "ws://") + "/graphql"
        opened = [await _anonymous_init(url, source) for source in ("127.0.0.1", "127.0.0.1", "127.0.0.2")]
        try:
            for ws in opened:
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
            fourth = await _anonymous_init(url, "127.0.0.3")  # an address with no connection yet
            code, reason, read = await closed_with(fourth, 5)
            assert (code, read) == (4429, 0), (code, reason)
            assert "at most 3 anonymous connections" in reason
            token = await (await new_client(own_pool, "VPCP", "audit:read")).token(hub)
            async with connected(hub, token) as signed_in:  # held open: it must not count as anonymous
                await signed_in.send(json.dumps({"type": "ping"}))
                assert json.loads(await asyncio.wait_for(signed_in.recv(), 5)) == {"type": "pong"}
                await opened.pop().close()
                async with asyncio.timeout(10):  # until the hub has let go of the closed connection
                    while True:
                        again = await _anonymous_init(url, "127.0.0.3")
                        try:
                            reply = json.loads(await asyncio.wait_for(again.recv(), 5))
                        except ConnectionClosed:  # still refused (4429): try again
                            await asyncio.sleep(0.1)
                            continue
                        opened.append(again)
                        assert reply["type"] == "connection_ack", reply
                        break
        finally:
            for ws in opened:
                await ws.close()


# --- 7. Connections that come and go (the soak, issue 18) ---------------------------------------------------------------

# What one WebSocket connection is made of on the hub's side: none may outlive its connection.
PER_CONNECTION: dict[str, type] = {
    "session": ws_endpoint._Session,
    "context": Context,  # the connection's and each operation's
    "HTTP protocol": GuardedHttpProtocol,  # the handshake's, before the upgrade
    "WebSocket protocol": WebSocketsSansIOProtocol,
    "websockets connection": ServerProtocol,  # its permessage-deflate holds ~50 KiB of zlib state
}


def per_connection_objects() -> Counter[str]:
    """Live objects of the PER_CONNECTION kinds, collectable cycles included (nothing is collected here)."""
    types = [type(o) for o in gc.get_objects()]  # type(): isinstance() on a dead weak proxy raises
    return Counter(kind for t in types for kind, cls in PER_CONNECTION.items() if issubclass(t, cls))


def live_objects() -> Counter[str]:
    """Objects by type, without the cancelled timers the event loop has not yet swept from its heap
    (asyncio drops them lazily, once they are more than half of a heap of over a hundred; on a busy
    machine, with the loop's other timers, several hundred may wait there) and the Context each holds."""
    objects = gc.get_objects()
    swept_later = [o for o in objects if isinstance(o, asyncio.TimerHandle) and o.cancelled()]
    counts = Counter(type(o).__qualname__ for o in objects)
    counts.subtract({"TimerHandle": len(swept_later), "Context": len(swept_later)})
    return counts


async def subscribe_and_leave(hub: str, token: str) -> None:
    """A subscriber of the soak's kind: connection_init, a subscription, complete, close (deflate on)."""
    async with connected(hub, token) as ws:
        op = await start(ws, SUBMISSIONS)
        await asyncio.sleep(REGISTERED)
        await ws.send(json.dumps({"id": op, "type": "complete"}))


@pytest.mark.slow
@bounded(120)
async def test_a_closed_connection_is_freed_at_once_not_by_the_cyclic_collector(own_url, own_pool) -> None:
    """The soak (issue 18) saw the hub's RSS grow by about 40 KiB per closed subscriber: each closed
    connection stayed in reference cycles (websockets' parser generator and its connection, the
    handshake's HTTP protocol and its parser, a finished task's traceback holding the session's frame,
    the subscription's executor) that only the cyclic collector frees, and a serving process runs its
    full passes rarely (nrhub.web.collector). Here the collector is off while 240 connections come and
    go after a warm-up: reference counting alone must free each one. Then, collected, the objects
    left must not grow with the connections (less than two per connection; the event loop's cancelled
    timers, which it sweeps lazily, are not counted)."""
    rounds, per_round = 8, 30  # per_round stays under the per-client cap (50)

    async def churn() -> None:
        await asyncio.gather(*(subscribe_and_leave(hub, token) for _ in range(per_round)))
        await asyncio.sleep(0.2)  # the hub's side of each connection ends after the close handshake

    async with serving_hub(own_url) as hub:  # nrhub serve's protocol and settings (nrhub.web.server)
        token = await (await new_client(own_pool, "VPCP", "audit:read")).token(hub)
        for _ in range(2):  # warm-up: the hub's caches, and what lingers from one round to the next
            await churn()
        gc.collect()
        warm = live_objects()
        gc.disable()
        try:
            for _ in range(rounds):
                await churn()
            left = per_connection_objects()
        finally:
            gc.enable()
        in_cycles = gc.collect()  # the test's own clients and asyncio's transports: not the hub's
        after = live_objects()
    closed, grown = rounds * per_round, after.total() - warm.total()
    print(f"\n{closed} connections after warm-up: {in_cycles} objects in cycles, then {grown} more objects")
    assert not left, f"kept until a full pass of the cyclic collector: {dict(left)}"
    growth = sorted(((after[k] - warm[k], k) for k in after if after[k] > warm[k]), reverse=True)[:10]
    assert grown < 2 * closed, f"{grown} more objects after {closed} connections came and went: {growth}"
