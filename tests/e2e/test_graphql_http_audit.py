"""GraphQL over HTTP conformance of the running hub, judged by the graphql-http audit suite.

The audits run in Node (tests/e2e/graphql_http_audit.mjs) with graphql-http from the repository's
node_modules, pinned in package-lock.json; `make setup` installs both.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.e2e.live_server import live_server

ROOT = Path(__file__).resolve().parents[2]
AUDIT = Path(__file__).with_name("graphql_http_audit.mjs")


def run_audit(url: str) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node is not None, "node is not on PATH; the README's setup installs Node.js and runs `npm ci`"
    assert (ROOT / "node_modules" / "graphql-http").is_dir(), "graphql-http is not installed: run `npm ci`"
    command = [node, str(AUDIT), url]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.slow
async def test_hub_passes_the_graphql_over_http_audit(hub_url: str) -> None:
    # The session's hub serves from this event loop: run Node without blocking it.
    done = await asyncio.to_thread(run_audit, f"{hub_url}/graphql")
    report = done.stdout + done.stderr
    assert "summary:" in done.stdout, report
    assert done.returncode == 0, report
    assert " 0 errors" in done.stdout, report


@pytest.mark.slow
def test_audit_reports_errors_for_a_server_that_is_not_graphql() -> None:
    """The harness itself can fail: an endpoint that only answers 404 breaks every MUST."""

    async def not_found(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Not Found", status_code=404)

    app = Starlette(routes=[Route("/graphql", not_found, methods=["GET", "POST"])])
    with live_server(app) as base_url:
        done = run_audit(f"{base_url}/graphql")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "\nerror  " in done.stdout
    assert "summary:" in done.stdout and " 0 errors" not in done.stdout


def test_audit_refuses_a_missing_or_bad_url() -> None:
    node = shutil.which("node")
    assert node is not None
    for args in ([], ["not a url"], ["ftp://127.0.0.1/graphql"]):
        command = [node, str(AUDIT), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "usage:" in done.stderr
