"""PostgreSQL stopped in ``immediate`` mode (a crash: no checkpoint, no goodbye to clients) during a stream
of submissions. After restart, every acknowledged submission is there and complete, none is partial, and the
audit chain verifies.

The test runs its own PostgreSQL (the binaries pgserver bundles), so that it can kill it without
disturbing the shared test server; the server is stopped and its folder removed even when the test fails.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

from nrhub.auth.clients import create_client
from nrhub.config.settings import Settings
from nrhub.db.cluster import Cluster, binaries
from nrhub.db.migrate import migrate
from nrhub.demo.load import load_demo
from nrhub.resolvers.audit import verify_chain
from nrhub.web.app import create_app
from tests.conftest import server_socket
from tests.reports.flows import (
    CELLS,
    MONTHLY,
    OPEN,
    REVIEW,
    SAVE,
    SUBMIT,
    assert_linear_chain,
    cell_values,
    key,
    ok,
    reporters,
)

NOW = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)


class PrivatePostgres:
    """A PostgreSQL server in its own temporary folder, on a Unix socket only."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nrhub-crash-"))
        self.pgdata = self.root / "pgdata"
        self.sockets = self.root / "s"
        self.log = self.root / "postgres.log"
        self.sockets.mkdir()
        # As root, pgserver's binaries run as the user ``pgserver`` (PostgreSQL refuses to run as root).
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "pgserver"
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self.root.chmod(0o755)

    def _ctl(self, *args: str, seconds: float = 30) -> None:
        # As the postgres user and its group alone (root's group may not reach a private checkout).
        account = pwd.getpwnam(self.user) if self.user else None
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
        command = [str(binaries() / "pg_ctl"), *args, "-D", str(self.pgdata)]
        subprocess.run(command, capture_output=True, timeout=seconds, check=True, **as_user)

    def init(self) -> None:
        # The hub's own initdb (hub/db/cluster.py), which also lets the postgres user reach the binaries.
        Cluster(self.pgdata.resolve()).prepare()

    def start(self) -> None:
        self._ctl("-w", "-t", "30", "-o", '-h ""', "-o", f"-k {self.sockets}", "-l", str(self.log), "start")

    def stop(self, mode: str) -> None:
        self._ctl("-w", "-t", "30", "-m", mode, "stop")

    def running(self) -> bool:
        try:
            self._ctl("status", seconds=10)
        except subprocess.CalledProcessError:
            return False
        return True

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.sockets}"

    def remove(self) -> None:
        try:
            if self.pgdata.exists() and self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Job:
    agency: str
    period: str
    base: int
    submission: int | None = None
    submitted: bool = False  # submitReport acknowledged: 200, data, no errors
    accepted: bool = False  # reviewReport acknowledged


class Stream:
    """Workers that open, fill, submit and accept one report after another through the hub."""

    def __init__(self, hub: str, tokens: dict[str, str], office: str, jobs: list[Job]) -> None:
        self.hub, self.tokens, self.office = hub, tokens, office
        self.pending = list(reversed(jobs))
        self.done: list[Job] = []
        self.failures = 0
        self.stop = asyncio.Event()
        self.http = httpx.AsyncClient(timeout=15)

    async def call(self, token: str, query: str, field: str, **variables: Any) -> dict[str, Any] | None:
        try:
            response = await self.http.post(
                f"{self.hub}/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return ok(response.json(), field)

    async def run_job(self, job: Job) -> bool:
        token = self.tokens[job.agency]
        opened = await self.call(token, OPEN, "openDraft", r=MONTHLY, p=job.period, k=key())
        if opened is None:
            return False
        job.submission = int(opened["submissionId"])
        saved = await self.call(token, SAVE, "saveValues", s=job.submission, v=cell_values(MONTHLY, job.base), k=key())
        if saved is None or saved["problems"]:
            return False
        submitted = await self.call(token, SUBMIT, "submitReport", s=job.submission, k=key())
        if submitted is None:
            return False
        job.submitted = submitted["status"] == "SUBMITTED"
        accepted = await self.call(self.office, REVIEW, "reviewReport", s=job.submission, d="ACCEPT", k=key())
        if accepted is None:
            return False
        job.accepted = accepted["status"] == "ACCEPTED"
        return True

    async def worker(self) -> None:
        while not self.stop.is_set() and self.pending:
            job = self.pending.pop()
            self.done.append(job)
            if not await self.run_job(job):
                self.failures += 1
                await asyncio.sleep(0.1)

    @property
    def accepted(self) -> int:
        return sum(j.accepted for j in self.done)


async def _serve(url: str) -> tuple[str, uvicorn.Server, asyncio.Task[None], socket.socket]:
    """The hub in this event loop, on a port of its own, with a fixed clock."""
    sock = server_socket()
    port = sock.getsockname()[1]
    settings = Settings(
        port=port, graphiql=False, issuer=f"http://127.0.0.1:{port}", token_rate_limit=10_000, pool_max_size=6
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings, url, clock=lambda: NOW), log_level="critical"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, task, sock


async def _token(hub: str, url: str, agency: str, scopes: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        client, secret = await create_client(conn, agency=agency, scopes=scopes.split())
    finally:
        await conn.close()
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.post(
            f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
        )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def test_immediate_stop_during_a_stream_of_submissions() -> None:
    server = PrivatePostgres()
    hub_server: uvicorn.Server | None = None
    hub_task: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(90):  # typically 20 s, most of it the demo load
            await asyncio.to_thread(server.init)
            await asyncio.to_thread(server.start)
            admin = await asyncpg.connect(server.url("postgres"))
            try:
                await admin.execute("CREATE DATABASE hub")
            finally:
                await admin.close()
            url = server.url("hub")
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
                await load_demo(conn, scale="small")
                provinces = (await reporters(conn, MONTHLY))[:12]
            finally:
                await conn.close()

            hub, hub_server, hub_task, hub_sock = await _serve(url)
            tokens = {p: await _token(hub, url, p, "reports:submit") for p in provinces}
            office = await _token(hub, url, "VPCP", "reports:review")

            # Months since the 34 provinces came into force (1 July 2025), up to October 2026.
            months = [f"{y}-M{m:02d}" for y in (2025, 2026) for m in range(1, 13)][6:22]
            jobs = [
                Job(p, month, 100 + 10 * n) for n, (month, p) in enumerate((m, p) for m in months for p in provinces)
            ]
            stream = Stream(hub, tokens, office, jobs)
            workers = [asyncio.create_task(stream.worker()) for _ in range(4)]
            try:
                # Let the stream run, with a few reports through, then crash the server under it.
                streaming = time.monotonic()
                while time.monotonic() - streaming < 2.0 or stream.accepted < 3:
                    assert time.monotonic() - streaming < 20, "the stream did not get going"
                    await asyncio.sleep(0.05)
                before_crash = stream.accepted
                await asyncio.to_thread(server.stop, "immediate")
                await asyncio.sleep(1.0)  # the stream goes on against a dead server
                stream.stop.set()
                await asyncio.wait_for(asyncio.gather(*workers), 30)
            finally:
                stream.stop.set()
                await asyncio.wait(workers, timeout=30)
                await stream.http.aclose()
            assert stream.failures > 0, "no request failed: the crash did not interrupt the stream"

            await asyncio.to_thread(server.start)
            conn = await asyncpg.connect(url)
            try:
                rows = {
                    r["id"]: r
                    for r in await conn.fetch(
                        """
                        SELECT s.id, s.status, s.agency_code, s.period,
                               (SELECT count(*) FROM submission_value v WHERE v.submission_id = s.id) AS cells,
                               (SELECT count(*) FROM observation_revision r WHERE r.submission_id = s.id) AS revisions,
                               array(SELECT a.action FROM audit_entry a WHERE a.subject = 'submission:' || s.id)
                                 AS actions
                        FROM submission s
                        """
                    )
                }
                acknowledged = [j for j in stream.done if j.submitted]
                assert len(acknowledged) >= before_crash >= 3
                for job in acknowledged:
                    row = rows.get(job.submission)
                    assert row is not None, f"acknowledged submission {job.submission} is gone"
                    assert (row["agency_code"], row["period"]) == (job.agency, job.period)
                    assert row["status"] in ("SUBMITTED", "ACCEPTED") and row["cells"] == 7, dict(row)
                    stored = {
                        r["indicator_code"]: r["value"]
                        for r in await conn.fetch(
                            "SELECT indicator_code, value FROM submission_value WHERE submission_id = $1",
                            job.submission,
                        )
                    }
                    assert stored == {c["indicator"]: Decimal(c["value"]) for c in cell_values(MONTHLY, job.base)}
                    if job.accepted:
                        assert row["status"] == "ACCEPTED" and row["revisions"] == 7, dict(row)

                # Nothing is partial: every change committed with its values and its audit entry, or not at all.
                for row in rows.values():
                    actions = sorted(row["actions"])
                    assert "submission.open" in actions, dict(row)
                    assert row["cells"] in (0, len(CELLS[MONTHLY])), dict(row)
                    assert ("submission.values" in actions) == (row["cells"] == 7), dict(row)
                    if row["status"] != "DRAFT":
                        assert row["cells"] == 7 and "submission.submit" in actions, dict(row)
                    accepted = row["status"] == "ACCEPTED"
                    assert (row["revisions"] == 7) == accepted and ("submission.accept" in actions) == accepted, dict(
                        row
                    )
                assert await assert_linear_chain(conn) > 0
                result = await verify_chain(conn)
                assert result.problem is None, result.problem
            finally:
                await conn.close()

            # The same hub serves again once the database is back.
            again = Stream(hub, tokens, office, [])
            after_restart = Job(provinces[0], "2026-M11", 900)
            try:
                assert await again.run_job(after_restart) and after_restart.accepted
            finally:
                await again.http.aclose()
    finally:
        if hub_server is not None and hub_task is not None:
            hub_server.should_exit = True
            try:
                await asyncio.wait_for(hub_task, 10)
            finally:
                hub_sock.close()
        await asyncio.to_thread(server.remove)
    assert not server.root.exists()
