"""The demo the documented examples run against, built as `make run` builds it.

A fresh database on the test server, loaded by the real ``nrhub demo load`` (which also creates the
``popdb`` database beside it, as for `make run`); the demo's tourism API on 127.0.0.1:8101, the
address hub/demo/sources.toml names; and a hub served with hub/demo/sources.toml's settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import fields
from typing import Any

import httpx
import pytest

from nrhub.config.settings import Settings, load_settings
from tests.conftest import ROOT, run_nrhub, serving_hub

DEMO_SETTINGS = ROOT / "hub" / "demo" / "sources.toml"
TOURISM_API = "http://127.0.0.1:8101"
# The reader of docs/api.md's GraphQL examples: the command centre's client, reading every field.
READER_SCOPE = (
    "catalog:read data:read field:growth field:labour field:social field:public_finance field:macro_stability"
    " field:business_environment field:infrastructure field:environment field:public_administration"
)


@pytest.fixture(scope="session")
async def demo_database(new_database) -> str:
    """A database loaded by the real `nrhub demo load` (about 20 s)."""
    url = await new_database()
    loaded = await run_nrhub("demo", "load", database_url=url, seconds=300)
    assert loaded.returncode == 0, loaded.stderr
    return url


async def _tourism_answers(client: httpx.AsyncClient) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        answer = await client.get(f"{TOURISM_API}/api/v1/arrivals", params={"provinces": "79", "months": "2026-M10"})
        return answer.status_code == 200 and bool(answer.json()["data"])
    return False


@pytest.fixture(scope="session")
async def tourism_api() -> AsyncIterator[str]:
    """The demo's tourism API, started as `make run` starts it; one already serving there is used as is
    (its figures are fixed by a seed, so any copy answers the same)."""
    async with httpx.AsyncClient(timeout=2) as client:
        if await _tourism_answers(client):
            yield TOURISM_API
            return
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub.demo.tourism_api", cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(200):
                if await _tourism_answers(client):
                    break
                assert process.returncode is None, "the tourism API stopped (is port 8101 taken?)"
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the tourism API did not answer within 10 s")
            yield TOURISM_API
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()


def demo_settings() -> dict[str, Any]:
    """hub/demo/sources.toml's settings where they differ from the defaults (serving_hub sets the rest)."""
    configured, default = load_settings(DEMO_SETTINGS, environ={}), Settings()
    return {
        f.name: getattr(configured, f.name)
        for f in fields(Settings)
        if getattr(configured, f.name) != getattr(default, f.name)
    }


@pytest.fixture(scope="session")
async def demo_hub(demo_database: str, tourism_api: str) -> AsyncIterator[str]:
    """The hub as `make run` serves it, on a free port; its base URL."""
    async with serving_hub(demo_database, **demo_settings()) as url:
        yield url


@pytest.fixture(scope="session")
async def reader_token(demo_hub: str, demo_database: str) -> str:
    """An access token of a client registered with READER_SCOPE, through the real CLI and token endpoint."""
    made = await run_nrhub(
        "clients", "create", "--agency", "VPCP", "--scope", READER_SCOPE, "--json", database_url=demo_database
    )
    assert made.returncode == 0, made.stderr
    client = json.loads(made.stdout)
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{demo_hub}/oauth/token",
            auth=(client["client_id"], client["client_secret"]),
            data={"grant_type": "client_credentials"},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def shell_environment(database_url: str) -> dict[str, str]:
    """What a reader's shell has after `make run`: no HUB_* of the test's own but the demo database's
    URL (the embedded server's stand-in), and no .venv/bin on PATH, so a bare `nrhub` fails as it would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p.rstrip("/") != venv_bin)
    env.pop("VIRTUAL_ENV", None)
    env["HUB_DATABASE_URL"] = database_url
    return env
