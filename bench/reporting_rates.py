"""Timeliness at national scale: every demo regime x 24 periods x every reporter in one ``reportingRates`` call.

A database of its own on a PostgreSQL server (``--database-url``, an administrator's; default the
local server), migrated, with the small demo set and a synthetic submission history: for each
regime, its periods in the 24 months before the current one, every reporter (34 provinces, the ministries) has
a report that is on time (about 80 %), late (10 %), returned and never resubmitted (4 %), or
missing (6 %), each with its form's required cells. Observations do not enter the question: the
large demo set differs only in them, so this database answers as the large one would.

A ``nrhub serve`` on 127.0.0.1 answers, and the run prints the median and slowest of ``--runs``
calls of ``reportingRates`` over all of it (totals, trend, per regime, per reporter and every
expected report), beside the anchor measured in the same run: the same answer gathered the way it
was before, one ``timeliness(regime, period)`` call per regime and period::

    .venv/bin/python -m bench.reporting_rates
    .venv/bin/python -m bench.reporting_rates --database-url postgresql://postgres@127.0.0.1:5432/postgres

The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from bench.servers import ROOT, Child, free_port
from nrhub.auth.clients import create_client
from nrhub.resolvers.deadlines import Rule, schedule
from nrhub.resolvers.periods import Period
from nrhub.resolvers.timeliness import periods_between

PERIODS = 24
NOW = datetime.now(UTC)  # the hub's clock too
RATES = """query($from: Period!, $to: Period!) { reportingRates(from: $from, to: $to) {
  total { expected submitted onTime late returned overdue completeness }
  byPeriod { regime period counts { expected submitted onTime } }
  byRegime { regime counts { expected submittedRate } }
  byAgency { agencyCode counts { expected onTimeRate } }
  reports { regime period agencyCode state submittedAt cellsFilled } } }"""
ONE = """query($r: String!, $p: Period!) { timeliness(regime: $r, period: $p) {
  expected submitted onTime late returned reports { agencyCode state submittedAt cellsFilled } } }"""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reporting_rates", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=10, help="reportingRates calls timed (default 10)")
    parser.add_argument("--seed", type=int, default=19)
    return parser.parse_args()


def _url_for(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + database + (f"?{query}" if query else "")


def _nrhub(database_url: str, *args: str, timeout: float = 900) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=database_url, HUB_LOG_LEVEL="warning")
    subprocess.run([sys.executable, "-m", "nrhub.cli", *args], cwd=ROOT, env=env, check=True, timeout=timeout)


def question() -> tuple[Period, Period]:
    """The 24 months before the current one: 24 periods of a monthly regime, 8 of a quarterly, 2 of an annual."""
    current = Period(NOW.year, NOW.month, "M")
    last = current.previous()
    first = last
    for _ in range(PERIODS - 1):
        first = first.previous()
    return first, last


async def _history(conn: asyncpg.Connection, rng: random.Random) -> tuple[int, list[tuple[str, str]]]:
    """Write the synthetic submissions; the (regime, period) pairs they cover and how many reports."""
    holidays = {r["day"] for r in await conn.fetch("SELECT day FROM holiday")}
    regimes = await conn.fetch(
        "SELECT code, frequency, cutoff_start_day, cutoff_end_day, deadline_rule, deadline_value FROM regime"
    )
    nation = await conn.fetchval("SELECT id FROM admin_unit WHERE level = 'NATION'")
    pairs: list[tuple[str, str]] = []
    reports = 0
    first, last = question()
    for regime in regimes:
        rule = Rule(*(regime[k] for k in ("cutoff_start_day", "cutoff_end_day", "deadline_rule", "deadline_value")))
        periods = periods_between(first, last, regime["frequency"])
        reporters = await conn.fetch(
            "SELECT rr.agency_code, coalesce(a.unit_id, $2) AS unit_id FROM regime_reporter rr"
            " JOIN agency a ON a.code = rr.agency_code WHERE rr.regime_code = $1",
            regime["code"],
            nation,
        )
        cells = await conn.fetch(
            "SELECT indicator_code, dims FROM regime_item WHERE regime_code = $1 AND required", regime["code"]
        )
        for period in periods:
            pairs.append((regime["code"], str(period)))
            deadline = schedule(rule, period, holidays).deadline
            for reporter in reporters:
                reports += await _report(conn, rng, regime["code"], reporter, str(period), deadline, cells)
    return reports, pairs


async def _report(
    conn: asyncpg.Connection,
    rng: random.Random,
    regime: str,
    reporter: asyncpg.Record,
    period: str,
    deadline: datetime,
    cells: list[asyncpg.Record],
) -> int:
    draw = rng.random()
    if draw < 0.06:
        return 0  # missing
    status = "RETURNED" if draw < 0.10 else "ACCEPTED"
    late = 0.10 <= draw < 0.20
    submitted = deadline + (timedelta(days=rng.uniform(0.5, 9)) if late else -timedelta(days=rng.uniform(0, 5)))
    submission = await conn.fetchval(
        "INSERT INTO submission (regime_code, agency_code, unit_id, period, created_at, created_by, deadline)"
        " VALUES ($1, $2, $3, $4, $5, 'bench', $6) RETURNING id",
        regime,
        reporter["agency_code"],
        reporter["unit_id"],
        period,
        submitted - timedelta(days=3),
        deadline,
    )
    await conn.executemany(
        "INSERT INTO submission_value (submission_id, indicator_code, unit_id, dims, value)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(submission, c["indicator_code"], reporter["unit_id"], c["dims"], rng.randint(1, 90_000)) for c in cells],
    )
    await conn.execute(
        "UPDATE submission SET status = $2, submitted_at = $3, on_time = $3 <= deadline, submitted_by = 'bench',"
        " reviewed_at = $3 + interval '2 days', reviewed_by = 'bench-reviewer',"
        " return_reason = CASE WHEN $2 = 'RETURNED' THEN 'synthetic: figures do not add up' END WHERE id = $1",
        submission,
        status,
        submitted,
    )
    return 1


async def _token(database_url: str, hub_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        client, secret = await create_client(conn, agency="VPCP", scopes=["reports:review"])
    finally:
        await conn.close()
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{hub_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
        )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


async def _timed(http: httpx.AsyncClient, query: str, **variables: object) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = await http.post("/graphql", json={"query": query, "variables": variables})
    elapsed = time.perf_counter() - started
    body = answer.json()
    if answer.status_code != 200 or "errors" in body:
        raise SystemExit(f"bench: {answer.status_code} {str(body)[:300]}")
    return elapsed, body["data"]


async def _measure(hub_url: str, token: str, pairs: list[tuple[str, str]], runs: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    first, last = question()
    async with httpx.AsyncClient(base_url=hub_url, headers=headers, timeout=120) as http:
        await _timed(http, RATES, **{"from": str(first), "to": str(last)})  # warm
        times = []
        for _ in range(runs):
            elapsed, data = await _timed(http, RATES, **{"from": str(first), "to": str(last)})
            times.append(elapsed)
        rates = data["reportingRates"]
        anchor_started = time.perf_counter()
        anchor_reports = 0
        for regime, period in pairs:
            _, one = await _timed(http, ONE, r=regime, p=period)
            anchor_reports += len(one["timeliness"]["reports"])
        anchor = time.perf_counter() - anchor_started
    total = rates["total"]
    print(f"bench: {first}..{last}: {len(rates['byRegime'])} regimes, {len(rates['byPeriod'])} regime-periods,")
    print(
        f"bench:   {total['expected']:,} expected reports ({total['submitted']:,} submitted, {total['late']:,} late,"
        f" {total['returned']:,} returned, {total['overdue']:,} overdue), {len(rates['reports']):,} listed"
    )
    p50 = statistics.median(times)
    print(f"bench: reportingRates, one call: median {p50 * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms ({runs})")
    print(
        f"bench: anchor, timeliness per regime and period: {len(pairs)} calls, {anchor * 1000:.0f} ms"
        f" ({anchor_reports:,} reports); one call / anchor = {p50 / anchor:.2f}"
    )
    if anchor_reports != total["expected"]:
        raise SystemExit(f"bench: the anchor counted {anchor_reports} reports, reportingRates {total['expected']}")


async def _run(args: argparse.Namespace) -> None:
    name = f"bench_rates_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _url_for(args.database_url, name)
    try:
        started = time.perf_counter()
        _nrhub(url, "migrate")
        _nrhub(url, "demo", "load")
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                reports, pairs = await _history(conn, random.Random(args.seed))
        finally:
            await conn.close()
        print(f"bench: database {name} ready in {time.perf_counter() - started:.0f} s: {reports:,} submissions")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_DATABASE_URL=url, HUB_HOST="127.0.0.1", HUB_PORT=str(port), HUB_LOG_LEVEL="warning",
            HUB_MIGRATE_ON_START="false",
        )  # fmt: skip
        hub = Child("hub", [sys.executable, "-m", "nrhub.cli", "serve"], env, port)
        try:
            await hub.wait_ready("/readyz", 180)
            hub_url = f"http://127.0.0.1:{port}"
            await _measure(hub_url, await _token(url, hub_url), pairs, args.runs)
        finally:
            hub.stop()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> int:
    args = _arguments()
    print(f"bench: load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    asyncio.run(_run(args))
    print(f"bench: load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
