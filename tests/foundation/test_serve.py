"""``nrhub serve`` as an operator runs it: a real process, a real port, the embedded PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from nrhub.db.migrate import discover_migrations, migrate
from tests.foundation.conftest import NRHUB, free_port, hub_env

READY_WITHIN = 90.0


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start ``nrhub serve`` on a free port; yield the process and its base URL; kill it if still alive."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(NRHUB), "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, status: int = 200) -> httpx.Response:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        assert process.poll() is None, f"nrhub serve exited early:\n{log.read_text()}"
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == status:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer {status} within {READY_WITHIN} s:\n{log.read_text()}")


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """The embedded postmaster and its children, found from the postmaster.pid it writes."""
    pid_file = data_dir / "pg" / "postmaster.pid"
    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    assert str(data_dir) in " ".join(postmaster.cmdline())
    return [postmaster, *postmaster.children(recursive=True)]


def _alive(process: psutil.Process) -> bool:
    # An exited child that init has not reaped yet is a zombie: gone, though it still has a pid.
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes_mentioning(data_dir: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{proc.info['pid']}: {cmdline}")
    return found


def stop(process: subprocess.Popen[bytes], signum: int, log: Path) -> int:
    process.send_signal(signum)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"nrhub serve did not exit within 30 s of signal {signum}:\n{log.read_text()}")


def test_serve_with_the_embedded_database_exits_0_and_stops_postgres_on_sigint_or_sigterm(data_dir, tmp_path):
    env = hub_env(HUB_DATA_DIR=str(data_dir))
    # A graceful stop on request is a success: exit 0, not 130 or 143 (uvicorn re-raises the signal it caught).
    runs = [(signal.SIGINT, 0), (signal.SIGTERM, 0)]
    for run, (signum, exit_code) in enumerate(runs):
        log = tmp_path / f"serve-{run}.log"
        with serving(env, log) as (process, base):
            assert wait_for(f"{base}/healthz", process, log).json() == {"status": "ok"}
            assert wait_for(f"{base}/readyz", process, log).json()["status"] == "ready"
            postgres = postgres_processes(data_dir)
            assert stop(process, signum, log) == exit_code, log.read_text()

        assert [p.pid for p in postgres if _alive(p)] == [], log.read_text()
        assert processes_mentioning(data_dir) == []
        assert not (data_dir / "pg" / "postmaster.pid").exists()
        output = log.read_text()
        assert "Traceback" not in output
        assert f"serving on {base}" in output
        assert "Running commandline" not in output  # pgserver's chatter stays out of the operator's log
        applied = [line for line in output.splitlines() if line.startswith("nrhub: applied ")]
        # The first start migrates the new database; the data survives, so the second has nothing to do.
        assert len(applied) == (len(discover_migrations()) if run == 0 else 0), output


async def test_readyz_answers_503_until_the_migrations_are_applied(new_database, tmp_path):
    url = await new_database()
    env = hub_env(HUB_DATABASE_URL=url, HUB_MIGRATE_ON_START="false")
    log = tmp_path / "serve.log"
    with serving(env, log) as (process, base):
        assert wait_for(f"{base}/healthz", process, log).status_code == 200
        pending = wait_for(f"{base}/readyz", process, log, status=503).json()
        assert pending["reason"] == "migrations pending"
        assert pending["pending"] == [m.filename for m in discover_migrations()]

        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            assert wait_for(f"{base}/readyz", process, log).json()["status"] == "ready"
            await conn.execute("UPDATE schema_migration SET checksum = 'edited' WHERE version = 1")
            edited = wait_for(f"{base}/readyz", process, log, status=503).json()
            assert "0001_catalogue.sql" in edited["reason"]
        finally:
            await conn.close()
        stop(process, signal.SIGINT, log)
    assert "Traceback" not in log.read_text()
