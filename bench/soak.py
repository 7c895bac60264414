"""Soak (issue 18): the hub served for an hour under churning subscribers, reads, writes and PostgreSQL restarts.

One ``nrhub serve`` (a child process on 127.0.0.1) on a PostgreSQL of the soak's own (a private server in
a temporary folder, bench/soak_postgres.py) with the small demo set, driven from this process for
``--minutes`` (default 60) by:

- writers (bench/soak_writes.py): provinces' clients open, fill and submit monthly reports; the Office of
  the Government's client accepts them or returns some; provinces correct accepted ones. Every write the
  hub acknowledged is written down;
- readers (bench/soak_reads.py): table, series and point queries of the same figures;
- subscribers (bench/soak_live.py): about 50 WebSocket clients at a time, each staying 5 to 60 s;
- a PostgreSQL restart every ``--restart-every`` minutes (default 5), alternately ``pg_ctl stop -m fast``
  and ``-m immediate`` (a crash), then started again;
- a sample of the hub's RSS and descriptors every 10 s (bench/soak_samples.py).

At the end: every acknowledged write is read back (bench/soak_verify.py), ``nrhub audit verify`` runs, and
a summary gives requests by outcome, writes, subscribers, resync events, restarts, RSS and descriptors and
PASS or FAIL for each criterion; the exit status is 1 when any fails. The whole run is bounded: it stops
at ``--minutes`` + 5 minutes whatever happens, and stops the hub and its PostgreSQL on the way out::

    .venv/bin/python -m bench.soak                                  # an hour
    .venv/bin/python -m bench.soak --minutes 3 --restart-every 1    # a smoke run, about 3.5 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil

from bench.servers import ROOT, Child, ServerFailed, free_port
from bench.soak_http import Client, Tokens
from bench.soak_live import CHANGES, SUBMISSIONS, Subscribers, Watcher
from bench.soak_postgres import STOP_MODES, PostgresFailed, PrivatePostgres
from bench.soak_reads import Readers
from bench.soak_report import BAD_LOG_LINES, Run, summary
from bench.soak_samples import Sampler
from bench.soak_verify import audit_verify, verify_ledger
from bench.soak_writes import MONTHLY, PERIODS, Slot, Writers
from nrhub.auth.clients import create_client

GRACE_MINUTES = 5  # the hard stop comes this long after --minutes
WATCHERS = [  # (name, agency, scopes, subscriptions)
    ("watch-all", "VPCP", "audit:read data:read indicator:RETAIL indicator:NEW_ENT", (SUBMISSIONS, CHANGES)),
    ("watch-region", "VPCP", "audit:read region:79", (SUBMISSIONS,)),
    ("watch-changes", "BTC", "data:read indicator:RETAIL indicator:NEW_ENT", (CHANGES,)),
]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--minutes", type=float, default=60, help="how long the load runs (default 60; at most 600)")
    add("--restart-every", type=float, default=5, help="minutes between PostgreSQL restarts (default 5; 0: none)")
    add("--down-seconds", type=float, default=2, help="how long PostgreSQL stays stopped (default 2)")
    add("--subscribers", type=int, default=50, help="WebSocket subscribers at a time (default 50; 0: none)")
    add("--no-compression", action="store_true", help="subscribers refuse permessage-deflate")
    add("--stay", type=float, nargs=2, default=(5, 60), metavar=("MIN", "MAX"), help="seconds each stays")
    add("--readers", type=int, default=3, help="concurrent readers (default 3; 0: none)")
    add("--read-pause", type=float, default=0.1, help="seconds between a reader's requests (default 0.1)")
    add("--writers", type=int, default=3, help="concurrent writers (default 3; 0: none)")
    add("--write-pause", type=float, default=0.2, help="seconds between a writer's requests (default 0.2)")
    add("--return-share", type=float, default=0.15, help="share of reviews that return a report (default 0.15)")
    add("--provinces", type=int, default=12, help="provinces whose reports are written (default 12; 1-34)")
    add("--sample-every", type=float, default=10, help="seconds between samples of the hub (default 10)")
    add("--warm-up", type=float, default=0.1, help="share of the run before RSS is taken as warm (default 0.1)")
    add("--rss-tolerance", type=float, default=16, help="MiB the RSS may grow after warm-up (default 16)")
    add("--rss-slope", type=float, default=16, help="MiB/hour the RSS may grow along its fit (default 16)")
    add("--seed", type=int, default=18)
    args = parser.parse_args()
    if not (0 < args.minutes <= 600 and args.restart_every >= 0 and 0 <= args.down_seconds <= 60):
        parser.error("--minutes must be in (0, 600], --restart-every not negative, --down-seconds in [0, 60]")
    if not (0 <= args.subscribers <= 500 and 0 <= args.readers <= 32 and 0 <= args.writers <= 16):
        parser.error("--subscribers 0-500, --readers 0-32, --writers 0-16")
    if not (1 <= args.provinces <= 34 and 0 < args.stay[0] <= args.stay[1] <= 600):
        parser.error("--provinces 1-34; --stay MIN MAX with 0 < MIN <= MAX <= 600")
    return args


def main() -> int:
    args = _arguments()
    postgres = PrivatePostgres()
    run = Run(args=args)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_bounded(args, postgres, run))
    finally:
        postgres.remove()
    print("\n".join(summary(run)), flush=True)
    return 0 if run.passed() else 1


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _bounded(args: argparse.Namespace, postgres: PrivatePostgres, run: Run) -> None:
    try:
        async with asyncio.timeout((args.minutes + GRACE_MINUTES) * 60):
            await _soak(args, postgres, run)
    except TimeoutError:
        run.aborted = f"hard stop at {args.minutes + GRACE_MINUTES:g} minutes"
    except (ServerFailed, PostgresFailed, OSError, asyncpg.PostgresError) as exc:
        run.aborted = f"{type(exc).__name__}: {exc}"


# --- Setting up -------------------------------------------------------------------------------------------------------


async def _prepare_database(postgres: PrivatePostgres) -> None:
    print(f"soak: private PostgreSQL in {postgres.root}; loading the small demo", flush=True)
    await asyncio.to_thread(postgres.init)
    await asyncio.to_thread(postgres.start)
    admin = await asyncpg.connect(postgres.url("postgres"))
    try:
        await admin.execute("CREATE DATABASE hub")
    finally:
        await admin.close()
    load = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nrhub.cli",
        "demo",
        "load",
        cwd=ROOT,
        env=_hub_env(postgres.url()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(load.communicate(), 600)
    if load.returncode != 0:
        raise ServerFailed(f"nrhub demo load exited with {load.returncode}:\n{output.decode(errors='replace')[-2000:]}")


@dataclass
class Cast:
    """The soak's OAuth clients: one per province written, the reviewer, the reader and the watchers."""

    provinces: list[Client]
    reviewer: Client
    reader: Client
    watchers: list[Watcher] = field(default_factory=list)


async def _register(database_url: str, provinces: int) -> Cast:
    conn = await asyncpg.connect(database_url)
    try:

        async def client(name: str, agency: str, scopes: str) -> Client:
            registered, secret = await create_client(conn, agency=agency, scopes=scopes.split(), name=f"soak {name}")
            return Client(name, agency, scopes, registered.client_id, secret or "")

        reporters = [
            r["agency_code"]
            for r in await conn.fetch(
                "SELECT agency_code FROM regime_reporter WHERE regime_code = $1 ORDER BY agency_code = 'UBND_79' DESC,"
                " agency_code",
                MONTHLY,
            )
        ][:provinces]  # Ho Chi Minh City first: the region-limited watcher follows its reports
        cast = Cast(
            [await client(a, a, "reports:submit") for a in reporters],
            await client("reviewer", "VPCP", "reports:review"),
            await client("reader", "VPCP", "data:read indicator:RETAIL indicator:NEW_ENT indicator:BUDGET_REV"),
        )
        for name, agency, scopes, operations in WATCHERS:
            cast.watchers.append(Watcher(await client(name, agency, scopes), operations))
        return cast
    finally:
        await conn.close()


def _hub_env(database_url: str, port: int | None = None) -> dict[str, str]:
    # Only the soak's settings: an HUB_* variable left in the shell would point the hub elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=database_url, HUB_LOG_LEVEL="warning", HUB_GRAPHIQL="false")
    if port is not None:
        env.update(HUB_HOST="127.0.0.1", HUB_PORT=str(port))
    return env


# --- The run ----------------------------------------------------------------------------------------------------------


async def _soak(args: argparse.Namespace, postgres: PrivatePostgres, run: Run) -> None:
    await _prepare_database(postgres)
    cast = await _register(postgres.url(), args.provinces)
    port = free_port()
    hub = Child("soak-hub", [sys.executable, "-m", "nrhub.cli", "serve"], _hub_env(postgres.url(), port), port)
    try:
        await hub.wait_ready("/readyz", 120)
        run.hub_pid = hub.process.pid
        print(f"soak: hub pid {hub.process.pid} on http://127.0.0.1:{port}; {args.minutes:g} minutes", flush=True)
        limits = httpx.Limits(max_connections=args.readers + args.writers + 8)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:
            await _load(args, postgres, run, hub, http, cast)
            await _verify(args, postgres, run, http)
        run.end = await _quiet_sample(run)
        run.hub_cpu = sum(psutil.Process(hub.process.pid).cpu_times()[:2])
    finally:
        _stop_hub(hub, run)


async def _load(
    args: argparse.Namespace,
    postgres: PrivatePostgres,
    run: Run,
    hub: Child,
    http: httpx.AsyncClient,
    cast: Cast,
) -> None:
    tally, seed = run.tally, args.seed
    tokens = run.tokens = Tokens(http, tally)
    slots = [Slot(c, c.agency.removeprefix("UBND_"), p) for c in cast.provinces for p in PERIODS]
    units = sorted({s.unit for s in slots})
    readers = Readers(http, tally, tokens, cast.reader, units, count=args.readers, pause=args.read_pause, seed=seed)
    writers = Writers(
        http,
        tally,
        tokens,
        slots,
        cast.reviewer,
        count=args.writers,
        pause=args.write_pause,
        return_share=args.return_share,
        seed=seed + 1,
    )
    url = f"http://127.0.0.1:{hub.port}"
    subscribers = Subscribers(
        url,
        tokens,
        cast.watchers,
        target=args.subscribers,
        stay=tuple(args.stay),
        compression=not args.no_compression,
        seed=seed + 2,
    )
    run.readers, run.writers, run.subscribers = readers, writers, subscribers
    await _prime(run, url, cast)
    run.sampler = Sampler(hub.process.pid, postgres.url(), args.sample_every)
    run.start = await run.sampler.sample()
    await _drive(args, postgres, run, hub)


async def _prime(run: Run, url: str, cast: Cast) -> None:
    """Every path once (each query, a subscriber, every client's token), so the count at rest holds what stays."""
    assert run.readers is not None and run.tokens is not None
    for kind in ("read:table", "read:series", "read:point"):
        await run.readers.read_once(kind)
    primer = Subscribers(url, run.tokens, cast.watchers[:1], target=1, stay=(1, 1), seed=0)
    priming = asyncio.create_task(primer.run())
    await asyncio.sleep(1.5)
    primer.stop.set()
    await priming
    for client in [*cast.provinces, cast.reviewer, *(w.client for w in cast.watchers)]:
        await run.tokens.get(client)
    await asyncio.sleep(2)


async def _drive(args: argparse.Namespace, postgres: PrivatePostgres, run: Run, hub: Child) -> None:
    """The load and the restarts for --minutes, sampled; then writes in flight finish."""
    assert run.readers and run.writers and run.subscribers and run.sampler
    run.sampler.started = run.load_started = time.monotonic()
    load = [asyncio.create_task(t.run()) for t in (run.readers, run.writers, run.subscribers)]
    sampling = asyncio.create_task(run.sampler.run())
    restarts = asyncio.create_task(_restarts(args, postgres, run))
    ends = run.load_started + args.minutes * 60
    while time.monotonic() < ends and hub.process.poll() is None:
        await asyncio.sleep(1)
    if hub.process.poll() is not None:
        run.aborted = f"the hub exited with {hub.process.returncode} during the run"
    run.load_ended = time.monotonic()
    run.sampler.stop.set()  # the last sample is of the hub under load
    print("soak: load done; letting writes in flight finish", flush=True)
    run.readers.stop.set()
    run.subscribers.stop.set()
    run.writers.finish()
    run.stop_restarts.set()
    try:
        await asyncio.wait_for(asyncio.gather(*load, sampling, restarts), 150)
    except TimeoutError:
        run.aborted = "the load did not stop within 150 s of its end"


async def _restarts(args: argparse.Namespace, postgres: PrivatePostgres, run: Run) -> None:
    """A PostgreSQL restart every --restart-every minutes, fast and immediate in turn, until the run ends."""
    n = 0
    while args.restart_every > 0:
        due = run.load_started + (n + 1) * args.restart_every * 60
        if due >= run.load_started + args.minutes * 60:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.stop_restarts.wait(), max(0.0, due - time.monotonic()))
        if run.stop_restarts.is_set():
            return
        mode = STOP_MODES[n % len(STOP_MODES)]
        at = time.monotonic() - run.load_started
        try:
            away = await asyncio.to_thread(postgres.restart, mode, args.down_seconds)
            run.restarts.append((at, mode, away, ""))
        except PostgresFailed as exc:
            run.restarts.append((at, mode, 0.0, str(exc).splitlines()[0]))
            with contextlib.suppress(PostgresFailed):
                await asyncio.to_thread(postgres.start)
        run.last_restart_done = time.monotonic()
        n += 1


async def _verify(args: argparse.Namespace, postgres: PrivatePostgres, run: Run, http: httpx.AsyncClient) -> None:
    print("soak: verifying every acknowledged write", flush=True)
    assert run.writers is not None and run.tokens is not None
    # The run's tokens are still good: reading back with them does not meet the token endpoint's limit again.
    run.verification = await verify_ledger(run.writers.ledger, http, run.tokens, postgres.url())
    budget = max(30.0, run.load_started + (args.minutes + GRACE_MINUTES - 1) * 60 - time.monotonic())
    run.verification.audit_exit, run.verification.audit_output = await asyncio.to_thread(
        audit_verify, postgres.url(), budget
    )


async def _quiet_sample(run: Run) -> object:
    """The hub's descriptors once the clients are gone: its client sockets closed, up to 20 s."""
    assert run.sampler is not None and run.start is not None
    deadline = time.monotonic() + 20
    while True:
        taken = await run.sampler.sample()
        if (taken.tcp <= run.start.tcp and taken.pg_connections is not None) or time.monotonic() > deadline:
            return taken
        await asyncio.sleep(1)


def _stop_hub(hub: Child, run: Run) -> None:
    """SIGINT, as an operator's Ctrl-C; keep the hub's log for the summary, then let it go."""
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            hub.process.wait(30)
    run.hub_exit = hub.process.poll()
    text = Path(hub.log.name).read_text(errors="replace")
    run.hub_log = text.splitlines()
    if any(line.startswith(BAD_LOG_LINES) for line in run.hub_log):
        run.hub_log_kept = Path(tempfile.gettempdir()) / f"nrhub-soak-hub-{hub.process.pid}.log"
        run.hub_log_kept.write_text(text)
    hub.stop()


if __name__ == "__main__":
    sys.exit(main())
