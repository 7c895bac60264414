"""Bulk entry: how long 20,000 values take to be accepted into a draft, by CSV upload over HTTP.

Target (issue 5): 20,000 values accepted in under 2 s on this machine. Floor, measured in the same
run: COPY of the same 20,000 rows into a temporary table over one asyncpg connection.

Runs on its own database on the embedded PostgreSQL under .hub-data/bench-bulk (or HUB_DATABASE_URL's
server): the small demo set, plus 600 synthetic communes under province 79 so that one province's
report can carry 20,000 cells. Only 127.0.0.1; bounded to a few rounds.

    .venv/bin/python bench/bulk_entry.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx
import uvicorn

from nrhub.auth.clients import create_client
from nrhub.config.settings import Settings
from nrhub.db.embedded import embedded_server
from nrhub.db.migrate import migrate
from nrhub.demo.load import load_demo
from nrhub.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
CELLS = 20_000
EXTRA_COMMUNES = 600


async def prepare(url: str) -> list[tuple[str, str]]:
    """Migrate, load the demo, add communes and a regime whose form has enough cells; return the cells."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        if not await conn.fetchval("SELECT count(*) FROM observation_current"):
            await load_demo(conn, scale="small")
        await conn.execute(
            """
            INSERT INTO admin_unit (code, name_vi, name_en, level, kind, parent_id, valid_from, synthetic)
            SELECT '79' || lpad(n::text, 3, '0'), 'Xã thử ' || n, 'Bench commune ' || n, 'COMMUNE', 'commune',
                   p.id, p.valid_from, true
            FROM admin_unit p CROSS JOIN generate_series(101, 100 + $1) AS n
            WHERE p.code = '79' AND p.valid_to IS NULL
            ON CONFLICT DO NOTHING
            """,
            EXTRA_COMMUNES,
        )
        cells = [
            (r["indicator_code"], r["dims"])
            for r in await conn.fetch(
                """
            SELECT i.code AS indicator_code, '' AS dims FROM indicator i WHERE i.aggregation = 'SUM'
            ORDER BY 1 LIMIT 67
            """
            )
        ]
        await conn.execute("DELETE FROM regime_item WHERE regime_code = 'BENCH_BULK'")
        await conn.execute(
            """
            INSERT INTO regime (code, name_vi, name_en, legal_basis, issuing_agency, receiving_agency, frequency,
                                deadline_rule, deadline_value)
            VALUES ('BENCH_BULK', 'Báo cáo thử tải', 'Bulk entry benchmark', 'benchmark only', 'VPCP', 'VPCP', 'M',
                    'DAYS_AFTER_CUTOFF', 5)
            ON CONFLICT (code) DO NOTHING
            """
        )
        await conn.execute("INSERT INTO regime_reporter VALUES ('BENCH_BULK', 'UBND_79') ON CONFLICT DO NOTHING")
        await conn.executemany(
            "INSERT INTO regime_item (regime_code, indicator_code, dims, required) "
            "VALUES ('BENCH_BULK', $1, $2, false) ON CONFLICT DO NOTHING",
            cells,
        )
        return cells
    finally:
        await conn.close()


def csv_body(cells: list[tuple[str, str]], units: list[str], salt: int) -> tuple[bytes, int]:
    lines = ["indicator,disaggregation,value,unit"]
    for unit in units:
        for indicator, dims in cells:
            lines.append(f"{indicator},{dims},{salt}{len(lines)}.25,{unit}")
            if len(lines) > CELLS:
                break
        if len(lines) > CELLS:
            break
    return ("\n".join(lines) + "\n").encode(), len(lines) - 1


async def floor(url: str, body: bytes) -> float:
    """COPY the same rows into a temporary table: the least any bulk path costs."""
    rows = [line.split(",") for line in body.decode().splitlines()[1:]]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE t (indicator text, dims text, value numeric, unit text)")
        started = time.perf_counter()
        await conn.copy_records_to_table("t", records=[(a, b, c, d) for a, b, c, d in rows])
        return time.perf_counter() - started
    finally:
        await conn.close()


async def run(url: str, rounds: int) -> None:
    cells = await prepare(url)
    admin = await asyncpg.connect(url)
    units = [
        r["code"]
        for r in await admin.fetch(
            "SELECT code FROM admin_unit WHERE code LIKE '79%' AND valid_to IS NULL AND level = 'COMMUNE' ORDER BY code"
        )
    ]
    client, secret = await create_client(admin, agency="UBND_79", scopes=["reports:submit"])
    await admin.close()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(port=port, graphiql=False, issuer=f"http://127.0.0.1:{port}", log_level="warning")
    server = uvicorn.Server(uvicorn.Config(create_app(settings, url), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=60) as http:
        token = (
            await http.post(
                f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        opened = await http.post(
            f"{base}/graphql",
            headers=headers,
            json={
                "query": (
                    'mutation($k: String!) { openDraft(regime: "BENCH_BULK", period: "2026-M11", idempotencyKey: $k) '
                    "{ submissionId } }"
                ),
                "variables": {"k": str(uuid.uuid4())},
            },
        )
        submission = opened.json()["data"]["openDraft"]["submissionId"]
        hub_times, floor_times, saved = [], [], 0
        for round_ in range(rounds):
            body, count = csv_body(cells, units, round_ + 1)
            floor_times.append(await floor(url, body))
            started = time.perf_counter()
            response = await http.put(
                f"{base}/reports/{submission}/values",
                content=body,
                headers={**headers, "Content-Type": "text/csv", "Idempotency-Key": str(uuid.uuid4())},
            )
            hub_times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text[:300]
            saved = response.json()["saved"]
            assert saved == count == CELLS, (saved, count)
    server.should_exit = True
    await task
    hub_p50, floor_p50 = statistics.median(hub_times), statistics.median(floor_times)
    print(f"cells per upload: {saved}; rounds: {rounds}")
    print(
        f"hub  CSV upload (HTTP, parse, check, upsert, audit): p50 {hub_p50 * 1000:.0f} ms, "
        f"max {max(hub_times) * 1000:.0f} ms"
    )
    print(f"floor COPY of the same rows:                          p50 {floor_p50 * 1000:.0f} ms")
    print(f"ratio hub/floor: {hub_p50 / floor_p50:.1f}x; target under 2 s: {'ok' if max(hub_times) < 2 else 'MISS'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = os.environ.get("HUB_DATABASE_URL")
        if url is None:
            admin = stack.enter_context(embedded_server(ROOT / ".hub-data" / "bench-bulk"))
            asyncio.run(_create_database(admin))
            url = admin.replace("/postgres?", "/bulk?")
        asyncio.run(run(url, max(1, min(args.rounds, 20))))


async def _create_database(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'bulk'"):
            await conn.execute("CREATE DATABASE bulk")
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
