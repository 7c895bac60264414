"""Benchmark of live updates (issue 7, item 7): many concurrent subscribers to ``submissionEvents`` on one hub.

One ``nrhub serve`` process (started here, on a database of its own cloned from a demo template on an
embedded PostgreSQL under ``--data-dir``) serves ``--subscribers`` WebSocket clients (graphql-transport-ws,
all in this process, on 127.0.0.1), a mix of full-access tokens and tokens restricted to one province.
Then ``--events`` submitted reports are accepted, one at a time, through the workflow functions on this
process's own connection (the hub's own code: the NOTIFY goes out in the same transaction), and each
delivery is timed from the moment COMMIT is sent to the moment the subscriber's client has the message.

Reported: p50, p90, p99 and max over all deliveries; the same per event for the last delivery (the whole
fan-out); the floor measured in the same run, a raw asyncpg LISTEN connection in this process receiving
the same notifications; and the hub process's RSS (/proc/<pid>/status) before and after the subscribers
connected, which gives memory per subscriber, and after the events. Run from the repository root::

    .venv/bin/python -m bench.subscriptions          # about 30 s (plus ~15 s for the template, once)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import orjson
import websockets

from nrhub.auth.clients import create_client
from nrhub.db.embedded import embedded_server
from nrhub.db.migrate import migrate
from nrhub.demo.load import load_demo
from nrhub.resolvers import approvals
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.audit import Actor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT / ".hub-data" / "bench-subs"
TEMPLATE = "bench_subs_template"
MONTHLY = "BC_KTXH_THANG"
CELLS = ["RETAIL", "BUDGET_REV", "BUDGET_EXP", "NEW_ENT", "TRAFFIC_DEATHS", "DOSSIERS_ONLINE", "DOSSIERS_TOTAL"]
PERIODS = [f"2026-M{m:02d}" for m in range(11, 0, -1)]  # November backwards: 34 reports per period
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
SUBSCRIPTION = (
    'subscription { submissionEvents(regime: "BC_KTXH_THANG") { resync type submissionId regime period agency'
    " status submittedAt onTime } }"
)
CONNECTIONS_PER_CLIENT = 25  # the hub allows 50 by default (ws_max_connections_per_client)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.subscriptions", description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000, help="WebSocket subscribers (default 1000)")
    parser.add_argument(
        "--restricted", type=float, default=0.5, help="share of subscribers restricted to one province (default 0.5)"
    )
    parser.add_argument("--events", type=int, default=68, help="reports accepted, one at a time (default 68)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="embedded PostgreSQL's folder")
    parser.add_argument("--no-compression", action="store_true", help="clients refuse permessage-deflate")
    parser.add_argument(
        "--hub-tree", type=Path, default=ROOT, help="checkout whose hub code is served (default: this one)"
    )
    parser.add_argument("--budget", type=float, default=240, help="give up after this many seconds (default 240)")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 2 * args.subscribers + 512))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # the hub inherits it too
    if wanted < args.subscribers + 256:
        print(f"bench: too few file descriptors ({wanted}) for {args.subscribers} subscribers", file=sys.stderr)
        return 2
    with embedded_server(args.data_dir) as admin_url:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            loop_factory = None
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(_run(args, admin_url))


# --- Database ---------------------------------------------------------------------------------------------------------


def _url_for(admin_url: str, name: str) -> str:
    head, _, query = admin_url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def _run_database(admin_url: str):
    """A fresh database for this run, cloned from a migrated demo template (made on the first run)."""
    admin = await asyncpg.connect(admin_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", TEMPLATE):
            print("bench: first run: loading the small demo into a template database (about 15 s)", flush=True)
            building = f"{TEMPLATE}_building"
            await admin.execute(f'DROP DATABASE IF EXISTS "{building}"')
            await admin.execute(f'CREATE DATABASE "{building}"')
            conn = await asyncpg.connect(_url_for(admin_url, building))
            try:
                await migrate(conn)
                await load_demo(conn, scale="small")
            finally:
                await conn.close()
            await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{TEMPLATE}"')
        name = f"bench_subs_{uuid.uuid4().hex[:10]}"
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await admin.close()
    try:
        yield _url_for(admin_url, name)
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass(frozen=True)
class Report:
    submission: int
    province: str
    period: str


async def _submitted_reports(conn: asyncpg.Connection, count: int) -> list[Report]:
    """``count`` monthly reports of the provinces, submitted (not yet accepted), through the workflow."""
    provinces = [
        r["code"]
        for r in await conn.fetch(
            "SELECT u.code FROM admin_unit u JOIN regime_reporter r ON r.agency_code = 'UBND_' || u.code"
            " WHERE r.regime_code = $1 AND u.level = 'PROVINCE' AND u.valid_to IS NULL ORDER BY u.code",
            MONTHLY,
        )
    ]
    reports = []
    for i in range(count):
        province, period = provinces[i % len(provinces)], PERIODS[i // len(provinces)]
        actor = Actor(agency=f"UBND_{province}", client="bench", user=None, request_id=uuid.uuid4().hex)
        cells = [workflow.CellValue(c, "", Decimal(1000 + 10 * j)) for j, c in enumerate(CELLS)]
        async with conn.transaction():
            draft = await workflow.open_draft(conn, actor, regime=MONTHLY, period=period, now=NOW)
            await workflow.save_values(conn, actor, draft.id, cells, now=NOW)
            await workflow.submit(conn, actor, draft.id, now=NOW)
        reports.append(Report(draft.id, province, period))
    return reports


# --- The hub process --------------------------------------------------------------------------------------------------


@dataclass
class Hub:
    process: asyncio.subprocess.Process
    url: str
    log: Path

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextlib.asynccontextmanager
async def _hub(database_url: str, tree: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=database_url,
        HUB_HOST="127.0.0.1",
        HUB_PORT=str(port),
        HUB_LOG_LEVEL="warning",
        HUB_GRAPHIQL="false",
        HUB_TOKEN_RATE_LIMIT="1000",  # one token per client, a few dozen clients at once
    )
    with tempfile.NamedTemporaryFile(prefix="bench-subscriptions-hub-", suffix=".log", delete=False) as out:
        log = Path(out.name)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nrhub.cli", "serve", cwd=tree, env=env, stdout=out, stderr=out
        )
    hub = Hub(process, f"http://127.0.0.1:{port}", log)
    try:
        async with httpx.AsyncClient(timeout=2) as http, asyncio.timeout(60):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"nrhub serve exited with {process.returncode}:\n{_text(log)}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{hub.url}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield hub
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if any("serving on" not in line for line in _text(log).splitlines()):
            print(f"bench: the hub wrote to its log: {log}", file=sys.stderr)
        else:
            _remove(log)


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def _token(conn: asyncpg.Connection, http: httpx.AsyncClient, hub: str, scopes: list[str]) -> str:
    client, secret = await create_client(conn, agency="VPCP", scopes=scopes, name=f"bench {' '.join(scopes)}")
    response = await http.post(
        f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


# --- Subscribers ------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Subscriber:
    province: str | None  # None: full access
    arrivals: list[tuple[float, bytes | str]] = field(default_factory=list)
    timed_from: int = 0  # arrivals before this one came before the timed events (the warm-up)
    ws: websockets.ClientConnection | None = None
    task: asyncio.Task[None] | None = None
    closed: str | None = None


class Fleet:
    def __init__(self, url: str, compression: bool) -> None:
        self.url = url.replace("http://", "ws://") + "/graphql"
        self.compression = compression
        self.subscribers: list[Subscriber] = []
        self.received = 0
        self.arrived = asyncio.Event()

    async def open(self, subscriber: Subscriber, token: str) -> None:
        ws = await websockets.connect(
            self.url,
            subprotocols=["graphql-transport-ws"],
            open_timeout=60,
            compression="deflate" if self.compression else None,
            max_queue=None,  # the client takes every message at once: no flow control skews the timing
        )
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        ack = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        subscriber.ws = ws
        subscriber.task = asyncio.create_task(self._read(subscriber, ws))
        self.subscribers.append(subscriber)

    async def _read(self, subscriber: Subscriber, ws: websockets.ClientConnection) -> None:
        arrivals, clock = subscriber.arrivals, time.perf_counter
        try:
            async for message in ws:
                arrivals.append((clock(), message))
                self.received += 1
                self.arrived.set()
        except websockets.ConnectionClosed as closed:
            subscriber.closed = str(closed)

    async def wait_for(self, total: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self.received < total:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return True

    async def close(self) -> None:
        async def one(s: Subscriber) -> None:
            if s.task:
                s.task.cancel()
            if s.ws:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(s.ws.close(), 5)

        await asyncio.gather(*(one(s) for s in self.subscribers))


# --- The run ----------------------------------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def rank(p: float) -> float:  # nearest rank
        return ordered[max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))]

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1], "n": len(ordered)}


def _line(label: str, stats: dict[str, float]) -> str:
    return (
        f"{label}: p50 {stats['p50']:.2f} ms, p90 {stats['p90']:.2f} ms, p99 {stats['p99']:.2f} ms,"
        f" max {stats['max']:.2f} ms (n={int(stats['n']):,})"
    )


async def _run(args: argparse.Namespace, admin_url: str) -> int:
    began = time.monotonic()
    async with asyncio.timeout(args.budget), _run_database(admin_url) as database_url:
        conn = await asyncpg.connect(database_url)
        listener = await asyncpg.connect(database_url)
        try:
            reports = await _submitted_reports(conn, args.events)
            async with _hub(database_url, args.hub_tree.resolve()) as hub:
                return await _measure(args, hub, conn, listener, reports, began)
        finally:
            await listener.close()
            await conn.close()


async def _measure(
    args: argparse.Namespace,
    hub: Hub,
    conn: asyncpg.Connection,
    listener: asyncpg.Connection,
    reports: list[Report],
    began: float,
) -> int:
    n = args.subscribers
    restricted = round(n * args.restricted)
    full = n - restricted
    provinces = sorted({r.province for r in reports} | {r["code"] for r in await conn.fetch(_PROVINCES)})
    plan: list[tuple[str | None, list[str]]] = []  # (province or None, scopes) per client
    for _ in range(-(-full // CONNECTIONS_PER_CLIENT)):
        plan.append((None, ["audit:read"]))
    for p in provinces:
        plan.append((p, ["audit:read", f"region:{p}"]))
    async with httpx.AsyncClient(timeout=30) as http:
        tokens = {i: await _token(conn, http, hub.url, scopes) for i, (_, scopes) in enumerate(plan)}
    # Who subscribes with which client's token: full access first, then the provinces in turn.
    seats: list[tuple[str | None, str]] = []
    full_clients = [i for i, (p, _) in enumerate(plan) if p is None]
    seats += [(None, tokens[full_clients[k // CONNECTIONS_PER_CLIENT]]) for k in range(full)]
    province_clients = [i for i, (p, _) in enumerate(plan) if p is not None]
    for k in range(restricted):
        client = province_clients[k % len(province_clients)]
        seats.append((plan[client][0], tokens[client]))

    fleet = Fleet(hub.url, compression=not args.no_compression)
    # Warm the subscription path once, so the baseline holds what every process holds after its first one.
    warm = Fleet(hub.url, compression=not args.no_compression)
    await warm.open(Subscriber(None), tokens[full_clients[0]])
    await asyncio.sleep(0.5)
    await warm.close()
    await asyncio.sleep(1.0)
    rss_before = hub.rss_kib()

    started = time.monotonic()
    gate = asyncio.Semaphore(64)

    async def seat(province: str | None, token: str) -> None:
        async with gate:
            await fleet.open(Subscriber(province), token)

    await asyncio.gather(*(seat(p, t) for p, t in seats))
    connect_seconds = time.monotonic() - started

    # The floor: this process's own LISTEN connection, timed from the same COMMIT as the subscribers.
    notifications: dict[int, float] = {}

    def heard(_c: object, _pid: int, _channel: str, payload: str) -> None:
        event = orjson.loads(payload)
        if event.get("type") == "submission.accepted":
            notifications.setdefault(int(event["submission"]), time.perf_counter())

    await listener.add_listener(workflow.EVENT_CHANNEL, heard)
    # Subscriptions register with the hub's event fan-out a moment after subscribe: notify (a submission
    # event, not timed) until every full-access subscriber has had one; the timed rounds check the others.
    warm_up, unit = reports[0], await _unit(conn, reports[0].province)
    full_access = [s for s in fleet.subscribers if s.province is None]
    per_province = {p: sum(1 for s in fleet.subscribers if s.province == p) for p in provinces}
    deadline, sent = time.monotonic() + 30, 0
    while any(not s.arrivals for s in full_access):
        if time.monotonic() > deadline:
            waiting = sum(1 for s in full_access if not s.arrivals)
            print(f"bench: {waiting} full-access subscribers got no warm-up event in 30 s", file=sys.stderr)
            return 1
        payload = {
            "type": "submission.submitted",
            "submission": warm_up.submission,
            "regime": MONTHLY,
            "period": warm_up.period,
            "agency": f"UBND_{warm_up.province}",
            "unit": unit,
            "n": sent,
        }
        await conn.execute("SELECT pg_notify($1, $2)", workflow.EVENT_CHANNEL, orjson.dumps(payload).decode())
        sent += 1
        await asyncio.sleep(1.0)
    await asyncio.sleep(1.0)  # settle: the warm-up's deliveries done before memory is read
    rss_connected = hub.rss_kib()
    baseline = fleet.received
    for s in fleet.subscribers:
        s.timed_from = len(s.arrivals)

    office = Actor(agency="VPCP", client="bench", user=None, request_id=None)
    committed: dict[int, float] = {}
    commit_ms: list[float] = []
    missing = 0
    total = baseline
    events_started, hub_cpu, own_cpu = time.monotonic(), hub.cpu_seconds(), time.process_time()
    # The clients are the measuring instrument: a collector pass over their 1,000 connections in this
    # process stamps every delivery in flight late (it made one event of each run look ~140 ms slow,
    # always the fourth, whatever its province). So no collection here while the events are timed.
    gc.freeze()
    gc.disable()
    try:
        for report in reports:
            transaction = conn.transaction()
            await transaction.start()
            await approvals.decide(conn, office, report.submission, approvals.Decision.APPROVE, None, now=NOW)
            t0 = time.perf_counter()
            await transaction.commit()
            commit_ms.append((time.perf_counter() - t0) * 1000)
            committed[report.submission] = t0
            total += full + per_province.get(report.province, 0)
            if not await fleet.wait_for(total, 30):
                missing += total - fleet.received
                total = fleet.received
    finally:
        gc.enable()
        gc.unfreeze()
    events_seconds = time.monotonic() - events_started
    hub_cpu, own_cpu = hub.cpu_seconds() - hub_cpu, time.process_time() - own_cpu
    await asyncio.sleep(0.5)
    rss_after = hub.rss_kib()

    deliveries: list[float] = []
    last: dict[int, float] = {}
    wrong = 0
    province_of = {r.submission: r.province for r in reports}
    for s in fleet.subscribers:
        for at, message in s.arrivals[s.timed_from :]:
            event = orjson.loads(message)
            delivered = ((event.get("payload") or {}).get("data") or {}).get("submissionEvents") or {}
            sub = delivered.get("submissionId")
            if event.get("type") != "next" or sub is None:
                wrong += 1
                continue
            if (
                sub not in committed
                or (delivered.get("type"), delivered.get("status")) != ("submission.accepted", "ACCEPTED")
                or (s.province is not None and s.province != province_of[sub])
            ):
                wrong += 1  # not an acceptance timed here, or outside the subscriber's grants
                continue
            latency = (at - committed[sub]) * 1000
            deliveries.append(latency)
            last[sub] = max(last.get(sub, 0.0), latency)
    floor = [(notifications[k] - t0) * 1000 for k, t0 in committed.items() if k in notifications]
    closed = sum(1 for s in fleet.subscribers if s.closed)
    await fleet.close()

    mib = 1024.0
    print(
        f"bench.subscriptions: hub {hub.url} (pid {hub.process.pid}, the code of {args.hub_tree});"
        f" {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"subscribers: {len(fleet.subscribers):,} connections, one submissionEvents subscription each:"
        f" {full:,} full access ({len(full_clients)} clients), {restricted:,} restricted to one province"
        f" ({len(provinces)} clients, region:NN); permessage-deflate {'off' if args.no_compression else 'on'};"
        f" connected and subscribed in {connect_seconds:.1f} s"
    )
    print(
        f"hub RSS: {rss_before / mib:.1f} MiB before, {rss_connected / mib:.1f} MiB with the subscribers"
        f" -> {(rss_connected - rss_before) / len(fleet.subscribers):.1f} KiB per subscriber;"
        f" {rss_after / mib:.1f} MiB after the events"
        f" ({(rss_after - rss_connected) * 1024 / max(1, len(deliveries)):,.0f} B more per delivery)"
    )
    print(
        f"events: {len(committed)} reports accepted one at a time in {events_seconds:.1f} s;"
        f" {len(deliveries):,} deliveries measured, {missing} missing, {wrong} unexpected, {closed} subscribers closed;"
        f" CPU per delivery: hub {hub_cpu * 1000 / max(1, len(deliveries)):.3f} ms,"
        f" clients {own_cpu * 1000 / max(1, len(deliveries)):.3f} ms"
    )
    print(_line("commit -> delivery at a subscriber", _percentiles(deliveries)))
    print(_line("commit -> last delivery of each event", _percentiles(list(last.values()))))
    print(_line("floor: commit -> NOTIFY at a raw LISTEN connection (this process)", _percentiles(floor)))
    print(_line("COMMIT round trip (for reference)", _percentiles(commit_ms)))
    print(f"run: {time.monotonic() - began:.0f} s")
    return 0 if missing == 0 and wrong == 0 and closed == 0 else 1


_PROVINCES = (
    "SELECT u.code FROM admin_unit u JOIN regime_reporter r ON r.agency_code = 'UBND_' || u.code"
    " WHERE r.regime_code = 'BC_KTXH_THANG' AND u.level = 'PROVINCE' AND u.valid_to IS NULL"
)


async def _unit(conn: asyncpg.Connection, province: str) -> int:
    return int(await conn.fetchval("SELECT id FROM admin_unit WHERE code = $1 AND valid_to IS NULL", province))


if __name__ == "__main__":
    sys.exit(main())
