"""The embedded PostgreSQL the hub runs when no database URL is configured.

Its files are under the data folder (setting ``data_dir``): ``pg/`` is PostgreSQL's data directory,
with its log (``postgres.log``) and, unless that path is too long, its Unix socket; ``run/`` (mode
0700) holds the lock and the list of the processes holding the server. PostgreSQL's binaries come
from pgserver's wheel; their lifecycle is the hub's (hub/db/cluster.py): the first process to need the
server starts it, ``nrhub demo load`` beside a running ``nrhub serve`` joins it (hub/db/handles.py),
every holder restarts it if it dies (hub/db/supervisor.py), and the last to leave stops it. No PID
from a file is signalled before it is verified (hub/db/postmaster.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import asyncpg

from nrhub.config.settings import Settings
from nrhub.db.cluster import Cluster, Running
from nrhub.db.embedded_errors import EmbeddedStartError
from nrhub.db.handles import HandleRegistry
from nrhub.db.postmaster import DEFAULT_PORT, PID_FILE, PostmasterFile
from nrhub.db.processes import ProcessId
from nrhub.db.supervisor import Supervisor

__all__ = ["DATABASE_NAME", "EmbeddedStartError", "database_url", "embedded_server"]

DATABASE_NAME = "hub"

log = logging.getLogger("hub.embedded")


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """Yield the URL of the hub database: the configured one, or an embedded server's."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    with embedded_server(settings.data_dir) as admin_url:
        yield _with_database(admin_url, DATABASE_NAME)


@contextlib.contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded server under ``data_dir/pg``; yield its admin URL.

    While inside, SIGTERM ends the process as an orderly exit, so that the server is left (and
    stopped, by its last holder) as after Ctrl-C.
    """
    data_dir = data_dir.resolve()
    cluster = Cluster((data_dir / "pg").resolve())  # as /proc names a process's folder: links followed
    registry = HandleRegistry(_run_folder(data_dir))
    me = ProcessId.current()
    holding = False
    with _sigterm_exits():
        try:
            with registry.locked():
                registry.add(me)
                holding = True
                cluster.prepare()
                running = cluster.ensure_running()
            _report(running, cluster)
            admin_url = _admin_url(running.postmaster)
            _ensure_database(admin_url, DATABASE_NAME)
            supervisor = Supervisor(cluster, registry)
            supervisor.start()
            try:
                yield admin_url
            finally:
                supervisor.stop()
        finally:
            if holding:
                with _signals_held(), registry.locked():
                    if not registry.remove(me):
                        cluster.stop()


def _run_folder(data_dir: Path) -> Path:
    run = data_dir / "run"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        run.mkdir(mode=0o700, exist_ok=True)
        run.chmod(0o700)
    except OSError as exc:
        raise EmbeddedStartError(
            f"cannot use {data_dir} as the data folder (setting data_dir): {exc.strerror}"
        ) from None
    return run


def _report(running: Running, cluster: Cluster) -> None:
    if running.set_aside is not None:
        log.warning(
            "%s named PID %d, which is not its postmaster (PostgreSQL had stopped without removing it): removed it",
            cluster.pgdata / PID_FILE,
            running.set_aside.pid,
        )


def _admin_url(postmaster: PostmasterFile) -> str:
    if postmaster.socket_dir is None:
        raise EmbeddedStartError("the embedded PostgreSQL listens on no Unix socket")
    port = "" if postmaster.port == DEFAULT_PORT else f"&port={postmaster.port}"
    return f"postgresql://postgres:@/postgres?host={quote(str(postmaster.socket_dir), safe='/')}{port}"


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    # SIGTERM's default action skips finally blocks, leaving the server running: make it an orderly exit.
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; its own SIGTERM handling then applies
        return
    previous = signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    # Already leaving: a second SIGTERM or Ctrl-C must not cut the server's stop short.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _raise_system_exit(signum: int, frame: FrameType | None) -> Any:
    raise SystemExit(128 + signum)


def _with_database(url: str, name: str) -> str:
    # The admin URL is postgresql://postgres:@/postgres?host=/socket/dir
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}?{query}" if query else f"{base}/{name}"


def _ensure_database(admin_url: str, name: str) -> None:
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

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as exc:
        raise EmbeddedStartError(f"the embedded PostgreSQL started but does not answer on {admin_url}: {exc}") from None
