"""Registered OAuth clients: created, listed, disabled and given new secrets by operators."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from nrhub.auth.operator_errors import OperatorError
from nrhub.auth.scopes import check_catalogue
from nrhub.auth.secrets import hash_secret, new_client_id, new_secret


class ClientError(OperatorError):
    """An operator's request about clients cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    agency_code: str
    scopes: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    disabled: bool
    confidential: bool


_COLUMNS = "client_id, name, agency_code, scopes, redirect_uris, disabled, secret_hash IS NOT NULL AS confidential"
_INSERT = """
INSERT INTO oauth_client (client_id, secret_hash, name, agency_code, scopes, redirect_uris)
VALUES ($1, $2, $3, $4, $5, $6)
"""


def _client(row: asyncpg.Record) -> Client:
    return Client(
        row["client_id"],
        row["name"],
        row["agency_code"],
        tuple(row["scopes"]),
        tuple(row["redirect_uris"]),
        row["disabled"],
        row["confidential"],
    )


async def create_client(
    conn: asyncpg.Connection,
    *,
    agency: str,
    scopes: list[str],
    name: str | None = None,
    redirect_uris: list[str] = (),
    public: bool = False,
) -> tuple[Client, str | None]:
    """Register a client; returns it and its secret (shown once; only the hash is stored)."""
    await check_catalogue(conn, scopes)
    if not await conn.fetchval("SELECT 1 FROM agency WHERE code = $1", agency):
        raise ClientError(f"there is no agency {agency}")
    if public and not redirect_uris:
        raise ClientError("a public (browser) client needs at least one redirect URI")
    for uri in redirect_uris:
        if not uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ClientError(f"redirect URI {uri} must use https (or loopback http)")
    client_id, secret = new_client_id(), (None if public else new_secret())
    await conn.execute(
        _INSERT,
        client_id,
        hash_secret(secret) if secret else None,
        name or f"{agency} client",
        agency,
        list(scopes),
        list(redirect_uris),
    )
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM oauth_client WHERE client_id = $1", client_id)
    return _client(row), secret


async def list_clients(conn: asyncpg.Connection) -> list[Client]:
    return [_client(r) for r in await conn.fetch(f"SELECT {_COLUMNS} FROM oauth_client ORDER BY created_at")]


async def disable_client(conn: asyncpg.Connection, client_id: str) -> None:
    """Tokens of a disabled client stop working at once: the resource server checks on every call."""
    status = await conn.execute("UPDATE oauth_client SET disabled = true WHERE client_id = $1", client_id)
    if status.endswith(" 0"):
        raise ClientError(f"there is no client {client_id}")


async def rotate_secret(conn: asyncpg.Connection, client_id: str) -> str:
    secret = new_secret()
    status = await conn.execute(
        "UPDATE oauth_client SET secret_hash = $2 WHERE client_id = $1 AND secret_hash IS NOT NULL",
        client_id,
        hash_secret(secret),
    )
    if status.endswith(" 0"):
        raise ClientError(f"there is no confidential client {client_id}")
    return secret
