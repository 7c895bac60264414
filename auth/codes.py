"""Authorization codes and refresh tokens: single use, stored only as hashes.

Redeeming is one atomic UPDATE ... WHERE used_at IS NULL, so of any number of concurrent
redemptions exactly one wins. A refresh token used twice means it leaked: the whole family of
tokens descended from that sign-in is revoked (OAuth 2.0 Security BCP, refresh token rotation),
and with it the access tokens issued beside them.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from nrhub.auth.secrets import token_hash

CODE_LIFETIME_SECONDS = 60
REFRESH_LIFETIME_DAYS = 7
# The longest an access token lives (HUB_TOKEN_LIFETIME is at most an hour): how long a revoked
# family's access tokens must stay on the revocation list.
ACCESS_TOKEN_MAX_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Grant:
    """What a redeemed code or refresh token stands for."""

    client_id: str
    username: str
    scope: str
    family_id: uuid.UUID | None = None
    redirect_uri: str | None = None
    code_challenge: str | None = None


def access_token_id(refresh_token: str) -> str:
    """The jti of the access token issued together with a refresh token.

    Derived from the refresh token's stored hash, so revoking a family can revoke its access tokens
    too without a table of them; and it reveals nothing of the refresh token itself."""
    return _access_token_id_of_hash(token_hash(refresh_token))


def _access_token_id_of_hash(hashed: str) -> str:
    return token_hash(f"access token of {hashed}")[:32]


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


async def insert_refresh(conn: asyncpg.Connection | asyncpg.Pool, grant: Grant) -> str:
    """A refresh token for the grant, in its family (a new family when it has none)."""
    token = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO refresh_token (token_hash, family_id, client_id, username, scope, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, now() + make_interval(days => $6))",
        token_hash(token),
        grant.family_id or uuid.uuid4(),
        grant.client_id,
        grant.username,
        grant.scope,
        REFRESH_LIFETIME_DAYS,
    )
    return token


Renew = Callable[[asyncpg.Connection, Grant], Awaitable[Grant]]


async def rotate_refresh(pool: asyncpg.Pool, token: str, client_id: str, renew: Renew) -> tuple[Grant, str] | None:
    """Use a refresh token once: the grant for the new tokens (as ``renew`` decides it, from the
    grant the token stood for) and the next refresh token. A reused one revokes its family: None.

    Atomic: the token is marked used and its successor inserted in one transaction. A concurrent use
    of the same token waits on the row this one updates, finds it used, and revokes the family after
    this commits, so the successor is revoked with it. ``renew`` may raise to refuse; then nothing
    changes and the token stays unused."""
    async with pool.acquire() as conn, conn.transaction():
        family = await conn.fetchval("SELECT family_id FROM refresh_token WHERE token_hash = $1", token_hash(token))
        if family is None:
            return None
        # Every use and revocation of one family in turn, taken before any of its rows: concurrent
        # reuses locking its rows in different orders deadlocked (a 500 instead of invalid_grant).
        await _lock_family(conn, family)
        row = await conn.fetchrow(
            "UPDATE refresh_token SET used_at = now() WHERE token_hash = $1 AND client_id = $2"
            " AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
            " RETURNING client_id, username, scope, family_id",
            token_hash(token),
            client_id,
        )
        if row is None:
            family = await conn.fetchval(
                "SELECT family_id FROM refresh_token WHERE token_hash = $1 AND used_at IS NOT NULL", token_hash(token)
            )
            if family is not None:
                await _revoke_family(conn, family)
            return None
        grant = await renew(conn, Grant(row["client_id"], row["username"], row["scope"], row["family_id"]))
        return grant, await insert_refresh(conn, grant)


async def revoke_refresh(pool: asyncpg.Pool, token: str, client_id: str) -> bool:
    """RFC 7009 for a refresh token: its family goes, and the access tokens issued with it."""
    async with pool.acquire() as conn, conn.transaction():
        family = await conn.fetchval(
            "SELECT family_id FROM refresh_token WHERE token_hash = $1 AND client_id = $2", token_hash(token), client_id
        )
        return family is not None and await _revoke_family(conn, family)


async def revoke_user_families(conn: asyncpg.Connection, username: str) -> int:
    """End every live sign-in of a person (an operator disabled them): each family of refresh tokens that
    may still be used, with the access tokens issued beside them. How many families were revoked.

    Run in the transaction that disables the person. A sign-in completing concurrently may start a family
    this does not see; the disabled flag, checked by every refresh and every API request, stops it."""
    families = await conn.fetch(
        "SELECT DISTINCT family_id FROM refresh_token WHERE username = $1 AND revoked_at IS NULL"
        # A family whose every token expired has no live access token either (7 days against an hour).
        " AND expires_at > now() ORDER BY family_id",
        username,
    )
    return sum([await _revoke_family(conn, row["family_id"]) for row in families])


async def _lock_family(conn: asyncpg.Connection, family_id: uuid.UUID) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))", family_id)


async def _revoke_family(conn: asyncpg.Connection, family_id: uuid.UUID) -> bool:
    await _lock_family(conn, family_id)  # held already when rotating; taken again costs nothing
    hashes = await conn.fetchval(
        "WITH revoked AS (UPDATE refresh_token SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL"
        " RETURNING token_hash) SELECT array_agg(token_hash) FROM revoked",
        family_id,
    )
    if not hashes:
        return False
    await conn.execute(
        "INSERT INTO revoked_token (jti, expires_at) SELECT unnest($1::text[]), now() + make_interval(secs => $2)"
        " ON CONFLICT DO NOTHING",
        [_access_token_id_of_hash(h) for h in hashes],
        ACCESS_TOKEN_MAX_SECONDS,
    )
    return True
