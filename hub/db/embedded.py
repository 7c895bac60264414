"""The embedded PostgreSQL the hub runs when no database URL is configured.

pgserver ships PostgreSQL binaries in its wheel and starts a private server on a Unix socket inside
the data folder. Its handles are reference-counted across processes, so ``nrhub demo load`` beside a
running ``nrhub serve`` shares the one server, and the last process to let go stops it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg

from nrhub.auth.operator_errors import OperatorError
from nrhub.config.settings import Settings

DATABASE_NAME = "hub"


class EmbeddedStartError(OperatorError):
    """The embedded PostgreSQL could not be initialised or started."""


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """Yield the URL of the hub database: the configured one, or an embedded server's."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    with embedded_server(settings.data_dir) as admin_url:
        yield _with_database(admin_url, DATABASE_NAME)


@contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded server under ``data_dir/pg``; yield its admin URL."""
    data_dir = data_dir.resolve()
    # pgserver keeps its inter-process lock under XDG_RUNTIME_DIR and computes that path when it
    # is imported, so the variable must be set before the import.
    runtime = data_dir / "run"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        runtime.mkdir(mode=0o700, exist_ok=True)
        runtime.chmod(0o700)
    except OSError as exc:
        raise EmbeddedStartError(
            f"cannot use {data_dir} as the data folder (setting data_dir): {exc.strerror}"
        ) from None
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import pgserver

    previous = signal.getsignal(signal.SIGTERM)
    # SIGTERM's default action skips atexit and finally blocks, leaving the server running:
    # turn it into an orderly exit.
    signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        try:
            server = pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
        except Exception as exc:  # pgserver raises bare subprocess and assertion errors
            raise EmbeddedStartError(f"embedded PostgreSQL did not start in {data_dir / 'pg'}: {exc}") from exc
        try:
            admin_url = server.get_uri()
            _ensure_database(admin_url, DATABASE_NAME)
            yield admin_url
        finally:
            server.cleanup()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_system_exit(signum: int, frame: FrameType | None) -> Any:
    raise SystemExit(128 + signum)


def _with_database(url: str, name: str) -> str:
    # pgserver's URL is postgresql://postgres:@/postgres?host=/socket/dir
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}?{query}" if query else f"{base}/{name}"


def _ensure_database(admin_url: str, name: str) -> None:
    import asyncio

    async def create() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                try:
                    await conn.execute(f'CREATE DATABASE "{name}"')
                except asyncpg.DuplicateDatabaseError:
                    pass  # another process created it between our check and our create
        finally:
            await conn.close()

    asyncio.run(create())
