"""Fixtures for the foundation tests: fresh migrated databases and the ``nrhub`` command as a process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from nrhub.db.migrate import migrate

NRHUB = Path(sys.executable).with_name("nrhub")


@pytest.fixture
async def migrated_url(new_database) -> str:
    """A fresh database with every migration applied and no data."""
    url = await new_database()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the shared demo database inside a transaction that is always rolled back."""
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            yield connection
        finally:
            await transaction.rollback()


def hub_env(**settings: str) -> dict[str, str]:
    """The environment of a fresh shell: no HUB_* variable and no pgserver runtime dir, then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") and k != "XDG_RUNTIME_DIR"}
    env.update(settings)
    return env


def run_nrhub(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NRHUB), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """An empty HUB_DATA_DIR under /tmp: pgserver, as root, runs postgres as a user that must traverse it."""
    path = Path(tempfile.mkdtemp(prefix="nrhub-test-", dir="/tmp"))
    yield path
    # A failed test may leave its own server behind: stop it, found by the folder only it uses.
    for process in psutil.process_iter(["cmdline"]):
        if str(path) in " ".join(process.info["cmdline"] or []):
            process.terminate()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def one_line_error() -> Callable[..., None]:
    """Assert a finished ``nrhub`` failed with exactly one line on stderr that names the problem."""

    def check(result: subprocess.CompletedProcess[str], *names: str) -> None:
        lines = result.stderr.splitlines()
        assert result.returncode not in (0, None), result.stderr
        assert "Traceback" not in result.stderr
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("nrhub: error: "), lines[0]
        for name in names:
            assert name in lines[0]

    return check
