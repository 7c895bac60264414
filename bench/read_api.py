"""Benchmark of the read API over HTTP on the large demo set, beside its anchors in the same run.

For each query (dashboard table, series, nested catalogue, point lookup) and each concurrency
(1 and 16 clients), the targets are timed in interleaved slices:

- hub:        POST /graphql on a running ``nrhub serve`` (started here, stopped with SIGINT);
- floor:      the same rows fetched from an asyncpg pool and encoded with orjson, in-process;
- starlette:  a minimal Starlette endpoint serving those rows as JSON (bench/anchor_app.py,
              uvicorn, one worker), through the same HTTP client as the hub;
- strawberry: for the point lookup only, a minimal strawberry endpoint in the anchor's process
              (bench/strawberry_anchor.py): what one GraphQL field costs with the required stack.

Before timing, the responses are checked equal (values parsed as Decimal), so all of them do the
same work. Run from the repository root, after bench/prepare.py::

    .venv/bin/python -m bench.read_api            # about 5 minutes
    .venv/bin/python -m bench.read_api --quick    # about 30 seconds, a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil
import uvloop

from bench import queries as q
from bench import servers
from bench.client import CLIENTS, Client, HttpxClient, RawClient
from bench.measure import CpuMeter, Sample, Target, floor_target, http_target, run_cell, run_slice, warm_up
from bench.pool import POOL_MAX_SIZE, create_pool, embedded_dsn

TABLE_TARGET = 1.5  # hub p50 / starlette p50, for table, series and point lookup
TAIL_TARGET = 2.5  # hub p99 / hub p50
WARM_UP_REQUESTS = 8 * POOL_MAX_SIZE  # past the five custom plans on every pooled connection
DEFAULT_DATA_DIR = servers.ROOT / ".hub-data" / "bench"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.read_api", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~30-second smoke run")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="HUB_DATA_DIR of the large demo")
    parser.add_argument(
        "--hub-tree", type=Path, default=servers.ROOT, help="checkout whose hub code is served (default: this one)"
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="another checkout (e.g. a git worktree of an earlier commit) whose hub is measured beside this one, "
        "as target 'base', on the same database",
    )
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw", help="HTTP client (default raw)")
    parser.add_argument("--seconds", type=float, help="seconds per query and concurrency, all targets together")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated client counts (default 1,16)")
    parser.add_argument("--queries", default="table,series,catalogue,point", help="comma-separated subset")
    args = parser.parse_args()
    args.seconds = args.seconds or (1.2 if args.quick else 25.0)
    args.slice = 0.2 if args.quick else 1.0
    args.warmup = 0.3 if args.quick else 8.0  # at most, per target
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.queries = args.queries.split(",")
    unknown = set(args.queries) - {"table", "series", "catalogue", "point"}
    if unknown:
        parser.error(f"unknown queries: {', '.join(sorted(unknown))}")
    return args


def _decoded(body: bytes) -> Any:
    data = json.loads(body, parse_float=Decimal)["data"]
    for value in data.values():
        # A DataBlock is written inline as JSON; accept a string too, in case it ever is one.
        if isinstance(value, dict) and isinstance(value.get("rows"), str):
            value["rows"] = json.loads(value["rows"], parse_float=Decimal)
    return data


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {a!r} against {b!r}"


async def check_equal(name: str, hub: Target, *others: Target) -> str:
    """Fail unless every target answers the hub's values; return a one-line summary of the data."""
    hub_data = _decoded(await hub.call(0))
    for other in others:
        data = _decoded(await other.call(0))
        if hub_data != data:
            raise SystemExit(f"{name}: the hub and the {other.name} differ at {_first_difference(hub_data, data)}")
    return _summary(name, hub_data)


def _summary(name: str, data: dict[str, Any]) -> str:
    if name in ("table", "series"):
        rows = data[name]["rows"]
        cells = [v for r in rows for v in r["values"]]
        width = len(data["table"]["columns"]) if name == "table" else len(data["series"]["periods"])
        filled = sum(v is not None for v in cells)
        return f"{len(rows)} units x {width} {'indicators' if name == 'table' else 'periods'}, {filled} values"
    if name == "catalogue":
        edges = data["indicators"]["edges"]
        dims = sum(len(e["node"]["dimensions"]) for e in edges)
        return f"{len(edges)} indicators with field, agency and {dims} dimensions"
    return f"value {data['observation']['value']} ({data['observation']['status']})"


async def client_check(port: int, seconds: float, meter: CpuMeter) -> list[str]:
    """Both clients against a trivial endpoint: what the client itself costs per request."""
    lines = ["| client | c | p50 ms | req/s | client CPU ms/req |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, client in (("raw", RawClient(port)), ("httpx", HttpxClient(port))):
        target = Target(name, _ping(client), psutil.Process())
        for concurrency in (1, 16):
            await run_slice(target, concurrency, min(seconds, 0.2), Sample(), meter)  # connect, warm
            sample = Sample()
            await run_slice(target, concurrency, seconds, sample, meter)
            lines.append(
                f"| {name} | {concurrency} | {1000 * sample.percentile(0.5):.3f} | {sample.rps:,.0f} "
                f"| {sample.per_request_ms(sample.client_cpu):.3f} |"
            )
        await client.close()
    return lines


def _ping(client: Client):
    async def call(worker: int) -> bytes:
        status, body = await client.get(worker, "/ping")
        if status != 200:
            raise SystemExit(f"/ping answered {status}")
        return body

    return call


def _result_rows(name: str, concurrency: int, samples: dict[str, Sample]) -> list[str]:
    rows = []
    for target, s in samples.items():
        rows.append(
            f"| {name} | {concurrency} | {target} | {s.requests:,} | {1000 * s.percentile(0.5):.2f} "
            f"| {1000 * s.percentile(0.99):.2f} | {s.rps:,.0f} | {s.per_request_ms(s.app_cpu):.2f} "
            f"| {s.per_request_ms(s.pg_cpu):.2f} | {s.response_bytes:,} |"
        )
    return rows


def _ratio_row(name: str, concurrency: int, samples: dict[str, Sample], targeted: bool) -> tuple[str, list[str]]:
    hub, floor, star = samples["hub"], samples["floor"], samples["starlette"]
    p50 = hub.percentile(0.5)
    vs_star, vs_floor, tail = p50 / star.percentile(0.5), p50 / floor.percentile(0.5), hub.percentile(0.99) / p50
    misses = []
    if targeted and vs_star > TABLE_TARGET:
        misses.append(f"{name} c={concurrency}: hub p50 is {vs_star:.2f}x the Starlette endpoint's (target 1.5x)")
    if tail > TAIL_TARGET:
        misses.append(f"{name} c={concurrency}: hub p99 is {tail:.2f}x its p50 (target 2.5x)")
    star_flag = ("ok" if vs_star <= TABLE_TARGET else "MISS") if targeted else "(no target)"
    stack = samples.get("strawberry")
    vs_stack = f"{p50 / stack.percentile(0.5):.2f}" if stack else "-"
    stack_vs_star = f"{stack.percentile(0.5) / star.percentile(0.5):.2f}" if stack else "-"
    base = samples.get("base")
    vs_base = (
        f"{p50 / base.percentile(0.5):.2f} ({hub.per_request_ms(hub.app_cpu) / base.per_request_ms(base.app_cpu):.2f})"
        if base
        else "-"
    )
    row = (
        f"| {name} | {concurrency} | {vs_floor:.2f} | {vs_star:.2f} {star_flag} | {vs_stack} | {stack_vs_star} "
        f"| {tail:.2f} {'ok' if tail <= TAIL_TARGET else 'MISS'} | {star.percentile(0.99) / star.percentile(0.5):.2f} "
        f"| {vs_base} |"
    )
    return row, misses


async def benchmark(args: argparse.Namespace) -> int:
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        hub = stack.enter_context(servers.hub(args.data_dir, args.hub_tree.resolve()))
        await hub.wait_ready("/readyz", within=180)
        dsn = embedded_dsn(args.data_dir)
        base = None
        if args.baseline_tree:
            tree = args.baseline_tree.resolve()
            reader = await _reader_before_row_security(tree, dsn)
            base = stack.enter_context(
                servers.hub(args.data_dir, tree, name="base", database_url=dsn, request_database_url=reader)
            )
            await base.wait_ready("/readyz", within=180)
        postmaster = int((args.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        pool = await create_pool(dsn)
        try:
            indicators = await q.indicator_codes(pool)
            anchor = stack.enter_context(servers.anchor(dsn, indicators))
            await anchor.wait_ready("/ping", within=60)
            return await _measure(args, pool, indicators, hub, base, anchor, CpuMeter(postmaster), started)
        finally:
            await pool.close()


async def _reader_before_row_security(tree: Path, dsn: str) -> str | None:
    """A baseline from before row-level security (migration 0013) never sets the grants its policies
    read, so as nrhub_app it would see no observation at all. It reads through a role with
    nrhub_app's grants that bypasses row security, which is how nrhub_app read before 0013."""
    if (tree / "migrations" / "0013_row_security.sql").exists():
        return None
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nrhub_bench_base') THEN"
            " CREATE ROLE nrhub_bench_base LOGIN INHERIT BYPASSRLS IN ROLE nrhub_app; END IF; END $$"
        )
    finally:
        await conn.close()
    return dsn.replace("postgresql://postgres@", "postgresql://nrhub_bench_base@", 1)


async def _measure(
    args: argparse.Namespace,
    pool: asyncpg.Pool,
    indicators: list[str],
    hub: servers.Child,
    base: servers.Child | None,
    anchor: servers.Child,
    meter: CpuMeter,
    started: float,
) -> int:
    catalogue = q.build_queries(indicators)
    hub_client, star_client = CLIENTS[args.client](hub.port), CLIENTS[args.client](anchor.port)
    hub_app, star_app = psutil.Process(hub.process.pid), psutil.Process(anchor.process.pid)
    base_client = CLIENTS[args.client](base.port) if base else None
    targets: dict[str, list[Target]] = {}
    print(f"# nrhub read API benchmark ({'quick' if args.quick else 'full'}), client: {args.client}\n")
    print(f"Hub code: {_describe_tree(args.hub_tree)}")
    if args.baseline_tree:
        print(f"Baseline hub code (target 'base'): {_describe_tree(args.baseline_tree)}")
    print(await _dataset(pool))
    print(f"Load average before the run: {_load()}\n")
    also = " = base" if base else ""
    print(f"Responses checked equal (hub = floor = starlette = strawberry{also}, values as Decimal):\n")
    for name in args.queries:
        query = catalogue[name]
        body = orjson.dumps({"query": query.graphql})
        targets[name] = [
            http_target("hub", hub_client, "/graphql", body, hub_app),
            floor_target(lambda a=query.anchor: a(pool)),
            http_target("starlette", star_client, f"/{name}", body, star_app),
        ]
        if name == "point":
            targets[name].append(http_target("strawberry", star_client, "/graphql", body, star_app))
        if base and base_client:
            targets[name].append(http_target("base", base_client, "/graphql", body, psutil.Process(base.process.pid)))
        print(f"- {name}: {await check_equal(name, *targets[name])}")
    print("\nClient cost against a trivial endpoint (the Starlette anchor's GET /ping):\n")
    print("\n".join(await client_check(anchor.port, 0.3 if args.quick else 2.0, meter)))
    for group in targets.values():  # every path: pools, plan and parse caches, PostgreSQL buffers
        for target in group:
            await warm_up(target, max(args.concurrency), WARM_UP_REQUESTS, args.warmup)
    results, ratios, misses = [], [], []
    for name, group in targets.items():
        for concurrency in args.concurrency:
            samples = await run_cell(group, concurrency, args.seconds, args.slice, meter)
            results += _result_rows(name, concurrency, samples)
            row, missed = _ratio_row(name, concurrency, samples, catalogue[name].targeted)
            ratios.append(row)
            misses += missed
    await hub_client.close()
    await star_client.close()
    if base_client:
        await base_client.close()
    print(f"\nEach cell: about {args.seconds:g} s, the targets taking turns in {args.slice:g} s slices.")
    _report(results, ratios, misses, time.monotonic() - started)
    return 0


async def _dataset(pool: asyncpg.Pool) -> str:
    row = await pool.fetchrow(
        "SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname = 'observation_current') AS observations,"
        " (SELECT count(*) FROM admin_unit WHERE level = 'COMMUNE' AND valid_to IS NULL) AS communes,"
        " (SELECT count(*) FROM indicator) AS indicators, version() AS version"
    )
    return (
        f"Data: about {row['observations']:,} current observations, {row['communes']:,} communes, "
        f"{row['indicators']} indicators; {row['version'].split(' on ')[0]}; "
        f"{psutil.cpu_count()} CPUs; Python {sys.version.split()[0]}"
    )


def _report(results: list[str], ratios: list[str], misses: list[str], elapsed: float) -> None:
    print("\nLatency per request (p50, p99), throughput, and CPU per request: app = the serving process")
    print("(hub, Starlette anchor, or this process for the floor), pg = all PostgreSQL processes.\n")
    print("| query | c | target | requests | p50 ms | p99 ms | req/s | app CPU ms/req | pg CPU ms/req | bytes |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(results))
    print("\nRatios (targets: hub p50 <= 1.5x Starlette for table, series, point; hub p99 <= 2.5x its p50):\n")
    print("strawberry: the minimal strawberry endpoint (point lookup only), the required stack's own floor.")
    print("base: the hub of --baseline-tree, p50 and, in brackets, app CPU per request.\n")
    print(
        "| query | c | hub/floor p50 | hub/starlette p50 | hub/strawberry p50 | strawberry/starlette p50 "
        "| hub p99/p50 | starlette p99/p50 | hub/base |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(ratios))
    print(f"\nTargets missed: {len(misses)}" + "".join(f"\n- {m}" for m in misses))
    print(f"\nRun took {elapsed:.0f} s; load average at the end: {_load()}.")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _describe_tree(tree: Path) -> str:
    """The checkout the hub runs from, with its commit when it is a git work tree."""
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=tree, capture_output=True, text=True, check=False
    )
    commit = described.stdout.strip() if described.returncode == 0 else "not a git checkout"
    return f"{tree.resolve()} ({commit})"


def main() -> int:
    args = _arguments()
    try:
        return uvloop.run(benchmark(args))
    except servers.ServerFailed as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
