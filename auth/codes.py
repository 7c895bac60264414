"""Authorization codes and refresh tokens: single use, stored only as hashes.

Redeeming is one atomic UPDATE ... WHERE used_at IS NULL, so of any number of concurrent
redemptions exactly one wins. A refresh token used twice means it leaked: the whole family of
tokens descended from that sign-in is revoked (OAuth 2.0 Security BCP, refresh token rotation).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import asyncpg

from auth.secrets import token_hash

CODE_LIFETIME_SECONDS = 60
REFRESH_LIFETIME_DAYS = 7


@dataclass(frozen=True, slots=True)
class Grant:
    """What a redeemed code or refresh token stands for."""

    client_id: str
    username: str
    scope: str
    family_id: uuid.UUID | None = None
    redirect_uri: str | None = None
    code_challenge: str | None = None


async def insert_code(
    pool: asyncpg.Pool, *, client_id: str, username: str, redirect_uri: str, scope: str, code_challenge: str
) -> str:
    code = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO authorization_code (code_hash, client_id, username, redirect_uri, scope, code_challenge,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))",
        token_hash(code),
        client_id,
        username,
        redirect_uri,
        scope,
        code_challenge,
        CODE_LIFETIME_SECONDS,
    )
    return code


async def redeem_code(pool: asyncpg.Pool, code: str, client_id: str) -> Grant | None:
    row = await pool.fetchrow(
        "UPDATE authorization_code SET used_at = now() WHERE code_hash = $1 AND client_id = $2"
        " AND used_at IS NULL AND expires_at > now()"
        " RETURNING client_id, username, scope, redirect_uri, code_challenge",
        token_hash(code),
        client_id,
    )
    return (
        Grant(row["client_id"], row["username"], row["scope"], None, row["redirect_uri"], row["code_challenge"])
        if row
        else None
    )


async def insert_refresh(pool: asyncpg.Pool, grant: Grant, family_id: uuid.UUID | None = None) -> str:
    token = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO refresh_token (token_hash, family_id, client_id, username, scope, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, now() + make_interval(days => $6))",
        token_hash(token),
        family_id or uuid.uuid4(),
        grant.client_id,
        grant.username,
        grant.scope,
        REFRESH_LIFETIME_DAYS,
    )
    return token


async def redeem_refresh(pool: asyncpg.Pool, token: str, client_id: str) -> Grant | None:
    """The grant behind a fresh refresh token; a reused one revokes its family and gives None."""
    hashed = token_hash(token)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE refresh_token SET used_at = now() WHERE token_hash = $1 AND client_id = $2"
            " AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
            " RETURNING client_id, username, scope, family_id",
            hashed,
            client_id,
        )
        if row is not None:
            return Grant(row["client_id"], row["username"], row["scope"], row["family_id"])
        await conn.execute(
            "UPDATE refresh_token SET revoked_at = now() WHERE revoked_at IS NULL AND family_id ="
            " (SELECT family_id FROM refresh_token WHERE token_hash = $1 AND used_at IS NOT NULL)",
            hashed,
        )
        return None


async def revoke_refresh(pool: asyncpg.Pool, token: str, client_id: str) -> bool:
    status = await pool.execute(
        "UPDATE refresh_token SET revoked_at = now() WHERE revoked_at IS NULL AND family_id ="
        " (SELECT family_id FROM refresh_token WHERE token_hash = $1 AND client_id = $2)",
        token_hash(token),
        client_id,
    )
    return not status.endswith(" 0")
