"""End-to-end fixtures: a real ``nrhub serve`` process on 127.0.0.1.

``hub_url`` is defined here only while tests/conftest.py has none; once the session-wide one exists
there, it is used instead and this fallback steps aside.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import conftest as root_conftest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_environment(database_url: str, port: int) -> dict[str, str]:
    """The process environment minus every inherited HUB_* variable (the hub refuses unknown ones,
    such as HUB_TEST_DATABASE_URL), plus the settings this server needs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=database_url,
        HUB_HOST="127.0.0.1",
        HUB_PORT=str(port),
        HUB_MIGRATE_ON_START="true",
        HUB_ASSETS_DIR=str(ROOT / "node_modules"),
        HUB_LOG_LEVEL="warning",
        # graphql-http's audits query __type (e.g. "MUST accept utf-8 encoded request",
        # "MUST allow map {variables}") without a token, so the audited hub must answer introspection
        # to callers without one: introspection on, and public reading, which grants them catalog:read.
        HUB_INTROSPECTION="true",
        HUB_PUBLIC_READ="true",
    )
    return env


@pytest.fixture(scope="session")
def hub_process(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``nrhub serve`` on the session's test database; yield its base URL once /readyz is 200."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("hub") / "nrhub.log"
    nrhub = Path(sys.executable).with_name("nrhub")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(nrhub), "serve"],
            cwd=ROOT,
            env=hub_environment(database_url, port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_ready(process, base_url, log_path)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_path.read_text(errors="replace")
            pytest.fail(f"nrhub serve exited with status {process.returncode}:\n{log}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    log = log_path.read_text(errors="replace")
    pytest.fail(f"nrhub serve was not ready within {START_TIMEOUT:.0f}s:\n{log}")


if not hasattr(root_conftest, "hub_url"):

    @pytest.fixture(scope="session")
    def hub_url(hub_process: str) -> str:
        """Base URL of a running hub (fallback until tests/conftest.py provides one)."""
        return hub_process
