"""Scopes name things in the catalogue: an unknown field, indicator or unit (region) is refused when a
client or a person is registered, with one line naming it, instead of granting nothing in silence."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.auth.test_tokens import NRHUB


async def nrhub_fails(database_url: str, *args: str, stdin: bytes = b"") -> str:
    """Run ``nrhub`` expecting the one-line failure of an operator's mistake; returns that line."""
    process = await asyncio.create_subprocess_exec(
        str(NRHUB),
        *args,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("HUB_")}, "HUB_DATABASE_URL": database_url},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode == 1, (out, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nrhub: error: "), err.decode()
    assert out == b""
    return lines[0]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("data:read field:finance", "unknown field finance; known fields: business_environment, "),
        ("data:read indicator:FOO indicator:GDP_GROWTH", "unknown indicator FOO"),
        ("data:read field:labour region:99", "unknown region 99"),
        ("data:read field:finance field:tourism region:99", "unknown fields finance, tourism; known fields: "),
    ],
)
async def test_clients_create_refuses_unknown_catalogue_words(
    database_url: str, pool, scope: str, expected: str
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM oauth_client")
    line = await nrhub_fails(database_url, "clients", "create", "--agency", "BTC", "--scope", scope)
    assert expected in line
    assert await pool.fetchval("SELECT count(*) FROM oauth_client") == before


async def test_users_create_refuses_unknown_catalogue_words(database_url: str, pool) -> None:
    line = await nrhub_fails(
        database_url,
        *("users", "create", "--username", "someone.new", "--agency", "BTC", "--scope", "data:read region:99"),
        stdin=b"a long enough passphrase\n",
    )
    assert "unknown region 99" in line
    assert await pool.fetchval("SELECT count(*) FROM hub_user WHERE username = 'someone.new'") == 0


async def test_an_unknown_agency_is_named(database_url: str) -> None:
    line = await nrhub_fails(database_url, "clients", "create", "--agency", "NOPE", "--scope", "data:read")
    assert "agency NOPE" in line
