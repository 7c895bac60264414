"""The two servers under test, as child processes: ``nrhub serve`` and the Starlette anchor.

Both listen on 127.0.0.1 only, on free ports, log at warning level, and are stopped with SIGINT
(the hub then shuts uvicorn down gracefully and lets go of the embedded PostgreSQL). Each runs in
its own session, so a Ctrl-C in the terminal reaches only the benchmark, which stops them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.client import RawClient

ROOT = Path(__file__).resolve().parents[1]


class ServerFailed(Exception):
    """A child server exited or did not become ready in time; the message carries its log's tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A server process with its log file; ``stop`` is idempotent."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, cwd: Path = ROOT) -> None:
        self.name, self.port = name, port
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    async def wait_ready(self, path: str, within: float) -> None:
        """Poll ``path`` until it answers 200, the process exits, or ``within`` seconds pass."""
        client = RawClient(self.port)
        deadline = time.monotonic() + within
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerFailed(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(OSError, asyncio.IncompleteReadError, TimeoutError):
                    async with asyncio.timeout(2):
                        status, _ = await client.get(0, path)
                    if status == 200:
                        return
                await asyncio.sleep(0.2)
        finally:
            await client.close()
        raise ServerFailed(f"{self.name} was not ready after {within:g} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()  # the hub turns SIGTERM into an orderly exit too
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        self.log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


def _hub_environment(
    data_dir: Path, port: int, tree: Path, database_url: str | None, request_database_url: str | None
) -> dict[str, str]:
    # Only the benchmark's settings: an HUB_* variable left in the shell (a database URL, a config
    # file) would point the hub elsewhere than the anchors. The queries are read anonymously, so
    # PUBLIC indicators must be readable without a token, whatever the default.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(data_dir), HUB_HOST="127.0.0.1", HUB_PORT=str(port), HUB_LOG_LEVEL="warning")
    env.update(HUB_PUBLIC_READ="true")
    if database_url:
        # A second hub on the first one's embedded PostgreSQL: it must not migrate what it shares.
        env.update(HUB_DATABASE_URL=database_url, HUB_MIGRATE_ON_START="false")
    if request_database_url:
        env.update(HUB_REQUEST_DATABASE_URL=request_database_url)
    if not (tree / "node_modules").is_dir():
        # A checkout without GraphiQL's assets borrows this one's; the hub refuses to start without them.
        env["HUB_ASSETS_DIR"] = str(ROOT / "node_modules")
    return env


@contextlib.contextmanager
def hub(
    data_dir: Path,
    tree: Path = ROOT,
    *,
    name: str = "hub",
    database_url: str | None = None,
    request_database_url: str | None = None,
) -> Iterator[Child]:
    """``nrhub serve`` on the benchmark data folder; it keeps the embedded PostgreSQL running.

    The hub runs the code of ``tree`` (``python -m nrhub.cli serve`` there, the same entry point as
    the ``nrhub`` script): by default this checkout, or e.g. a ``git worktree`` of a commit, so a
    run measures committed code while the working tree is being edited. With ``database_url`` it
    connects to that database instead (a baseline hub beside the first, on its PostgreSQL), and
    with ``request_database_url`` its requests log in with that URL.
    """
    if not (data_dir / "pg").is_dir():
        raise ServerFailed(f"no database in {data_dir}: run bench/prepare.py first (see bench/README.md)")
    port = free_port()
    argv = [sys.executable, "-m", "nrhub.cli", "serve"]
    env = _hub_environment(data_dir, port, tree, database_url, request_database_url)
    child = Child(name, argv, env, port, cwd=tree)
    try:
        yield child
    finally:
        child.stop()


@contextlib.contextmanager
def anchor(dsn: str, indicators: list[str]) -> Iterator[Child]:
    """The minimal Starlette endpoint (bench/anchor_app.py) on the same database."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.anchor_app", "--dsn", dsn, "--port", str(port)]
    argv += ["--indicators", ",".join(indicators)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    child = Child("starlette", argv, env, port)
    try:
        yield child
    finally:
        child.stop()
