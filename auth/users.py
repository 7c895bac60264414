"""People who sign in (analysts of partner agencies, ministry staff): each belongs to an agency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from nrhub.auth.clients import ClientError
from nrhub.auth.codes import revoke_user_families
from nrhub.auth.scopes import check_catalogue
from nrhub.auth.secrets import hashed, verified


@dataclass(frozen=True, slots=True)
class User:
    username: str
    agency_code: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Account:
    """A person as operators see them in ``nrhub users list``: never the password hash."""

    username: str
    agency_code: str
    scopes: tuple[str, ...]
    disabled: bool
    created_at: datetime


_SELECT_ACCOUNTS = "SELECT username, agency_code, scopes, disabled, created_at FROM hub_user ORDER BY username"


async def create_user(
    conn: asyncpg.Connection, *, username: str, password: str, agency: str, scopes: list[str]
) -> User:
    await check_catalogue(conn, scopes)
    if len(password) < 12:
        raise ClientError("a password needs at least 12 characters")
    if not await conn.fetchval("SELECT 1 FROM agency WHERE code = $1", agency):
        raise ClientError(f"there is no agency {agency}")
    try:
        await conn.execute(
            "INSERT INTO hub_user (username, password_hash, agency_code, scopes) VALUES ($1, $2, $3, $4)",
            username,
            await hashed(password),
            agency,
            scopes,
        )
    except asyncpg.UniqueViolationError:
        raise ClientError(f"user {username} exists already") from None
    except asyncpg.CheckViolationError:
        raise ClientError("a username is 3-64 characters: lower-case letters, digits and . _ @ -") from None
    return User(username, agency, frozenset(scopes))


async def authenticate_user(pool: asyncpg.Pool, username: str, password: str) -> User | None:
    """The user, if the password matches and the account is enabled; unknown names cost the same."""
    row = await pool.fetchrow(
        "SELECT username, password_hash, agency_code, scopes, disabled FROM hub_user WHERE username = $1", username
    )
    ok = await verified(password, row["password_hash"] if row else None)
    if not ok or row is None or row["disabled"]:
        return None
    return User(row["username"], row["agency_code"], frozenset(row["scopes"]))


async def list_accounts(conn: asyncpg.Connection) -> list[Account]:
    return [
        Account(r["username"], r["agency_code"], tuple(r["scopes"]), r["disabled"], r["created_at"])
        for r in await conn.fetch(_SELECT_ACCOUNTS)
    ]


async def disable_user(conn: asyncpg.Connection, username: str) -> tuple[bool, int]:
    """Disable a person: no more sign-ins, refreshes or API calls, and every live sign-in revoked.

    Returns whether they were disabled already and how many sign-ins (refresh token families) ended.
    Call in a transaction: the flag and the revocations take effect together."""
    was_disabled = await conn.fetchval("SELECT disabled FROM hub_user WHERE username = $1 FOR UPDATE", username)
    if was_disabled is None:
        raise ClientError(f"there is no user {username}")
    await conn.execute("UPDATE hub_user SET disabled = true WHERE username = $1", username)
    return was_disabled, await revoke_user_families(conn, username)
