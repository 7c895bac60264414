"""The asyncpg pools the hub serves from, and the connection errors it reports in plain words.

Requests run on a pool logged in as the request role ``nrhub_app`` (migration 0012), never as the
configured URL's user, who owns the tables and runs migrations and operator commands: a role a
request connection cannot leave (no SET ROLE from a superuser, which RESET ROLE would undo).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from nrhub.auth.operator_errors import OperatorError
from nrhub.config.settings import Settings
from nrhub.resolvers.granted import GrantedConnection


class DatabaseUnreachable(OperatorError):
    """The configured database cannot be reached; the message says where and why."""


APP_ROLE = "nrhub_app"
log = logging.getLogger("hub")

# Whoever serves requests must not be able to step out of the request role's grants (migration 0012):
# not a superuser, not a role that skips row-level security (migration 0013), and not a role that
# may write the tables the API serves (the owner's URL given by mistake). Checked on every new
# connection, so no setting can turn the boundary off silently.
_CHECK_ROLE = """
SELECT current_user AS name, rolsuper AS superuser, rolbypassrls AS bypasses_rls,
       coalesce(has_table_privilege(to_regclass('observation_current'), 'UPDATE'), false) AS writes_served
FROM pg_roles WHERE rolname = current_user
"""


class UnsafeRequestRole(DatabaseUnreachable):
    """Request connections would run as a role that can bypass the request role's grants."""


def request_url(settings: Settings, url: str) -> str:
    """The URL request connections log in with: ``request_database_url``, else ``url`` as nrhub_app.

    The derived URL drops the password: the embedded server trusts its private socket, and other
    servers authenticate nrhub_app by their own means (trust, peer, cert, ~/.pgpass) unless the
    operator configures the request URL with its password.
    """
    if settings.request_database_url:
        return settings.request_database_url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = "&".join(p for p in parts.query.split("&") if p and p.split("=")[0] not in ("user", "password"))
    return urlunsplit((parts.scheme, f"{APP_ROLE}@{host}", parts.path, query, parts.fragment))


async def _init_request_connection(conn: asyncpg.Connection) -> None:
    role = await conn.fetchrow(_CHECK_ROLE)
    what = (
        "a superuser" if role["superuser"]
        else "a role that bypasses row-level security" if role["bypasses_rls"]
        else "a role that may write observation_current" if role["writes_served"]
        else None
    )  # fmt: skip
    if what:
        raise UnsafeRequestRole(
            f"request connections must not log in as {role['name']}, {what}; they log in as {APP_ROLE} "
            "(setting request_database_url)"
        )
    await _init_connection(conn)


class BoundedPool(asyncpg.Pool):
    """A pool whose acquire and release always have a time limit.

    asyncpg waits for ever by default: with PostgreSQL hung (stopped, not dead) a request waited
    for a connection, or for a cancelled statement's connection to come back, long past its
    deadline. Acquiring waits at most ``acquire_timeout`` (the request's deadline usually comes
    first); releasing at most ``release_timeout``, after which asyncpg closes the connection.
    """

    acquire_timeout = 10.0
    release_timeout = 1.0

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg's)
        try:
            await super().release(connection, timeout=self.release_timeout if timeout is None else timeout)
        except TimeoutError:
            # asyncpg has terminated the connection (a new one replaces it). Raising here would
            # replace the CancelledError of a request cut at its deadline, and the task would go on.
            log.debug("a connection did not come back within %g s and was closed", self.release_timeout)


async def close_pool(pool: asyncpg.Pool, seconds: float = 5.0) -> None:
    """Close ``pool`` gracefully, or terminate it after ``seconds``: asyncpg's close waits for ever
    on a connection whose server no longer answers (hung, or the link silently dropped)."""
    closing = asyncio.ensure_future(pool.close())
    # Not wait_for: it would wait for the cancelled close, which asyncpg does not end while it waits.
    done, _ = await asyncio.wait({closing}, timeout=seconds)
    if not done:
        log.warning("closing the database connections took longer than %g s; dropped them", seconds)
        pool.terminate()
        closing.cancel()
        await asyncio.wait({closing}, timeout=1)


def _bounded_pool(dsn: str, **options: Any) -> BoundedPool:
    """``asyncpg.create_pool`` with BoundedPool for its class (it takes no class argument)."""
    defaults: dict[str, Any] = {
        "max_queries": 50000,
        "max_inactive_connection_lifetime": 300.0,
        "loop": None,
        "connection_class": asyncpg.Connection,
        "record_class": asyncpg.Record,
    }
    return BoundedPool(dsn, **{**defaults, **options})


def keep_alive(conn: asyncpg.Connection) -> None:
    """TCP keepalives and a user timeout on a connection over TCP (a Unix socket needs none).

    A connection dropped without FIN or RST (a NAT or firewall forgetting it) otherwise stays
    "open" for ever: a statement sent on it waits for an answer that never comes. With these, the
    kernel gives up on unacknowledged data after 10 s and probes an idle connection after 10 s.
    """
    sock = conn._transport.get_extra_info("socket")  # asyncpg has no public handle on its socket
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 3), ("TCP_KEEPCNT", 3), ("TCP_USER_TIMEOUT", 10_000)):
        if hasattr(socket, option):  # Linux names all four
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


async def _init_connection(conn: asyncpg.Connection) -> None:
    keep_alive(conn)
    # jsonb in and out through orjson: audit payloads and federated values are JSON.
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        format="text",
    )
    await conn.set_type_codec("json", schema="pg_catalog", encoder=json.dumps, decoder=orjson.loads, format="text")


async def _reset(conn: asyncpg.Connection) -> None:
    # asyncpg's default reset costs a round trip on every release (measured: a point lookup goes
    # from 0.14 ms to 0.25 ms). The hub's request connections LISTEN on nothing and release with
    # no open transaction. Their one session state, the grants row-level security reads
    # (hub.indicators, hub.units), is left in place on purpose: the request handle sets them on
    # a connection before each statement unless they are already its own (resolvers/granted.py),
    # so clearing them here would cost every statement a round trip and protect nothing.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(settings: Settings, url: str) -> asyncpg.Pool:
    """Open the request pool, logged in as the request role; ``url`` is the owner's (migrations, CLI).

    Raises DatabaseUnreachable with a one-line reason when it cannot connect. Before migration 0012
    the request role cannot log in yet: the pool then opens its connections on first use, and
    /readyz reports the pending migrations meanwhile.
    """
    target = request_url(settings, url)
    options: dict[str, Any] = {
        "max_size": settings.pool_max_size,
        "init": _init_request_connection,
        "reset": _reset,
        "connection_class": GrantedConnection,  # remembers whose grants it holds
        "timeout": 10,
        "command_timeout": 60,
    }
    try:
        try:
            pool = await _bounded_pool(target, min_size=settings.pool_min_size, **options)
        except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError) as exc:
            if not await _request_role_pending(url):
                raise
            log.warning("request role %s cannot log in until the migrations are applied: %s", APP_ROLE, exc)
            pool = await _bounded_pool(target, min_size=0, **options)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseUnreachable(
            f"cannot connect to the database at {describe(target)} as {_user(target)}: {exc}"
        ) from exc
    assert pool is not None
    return pool


async def create_owner_pool(url: str, size: int = 2) -> asyncpg.Pool:
    """A small pool of the owner's connections for what requests must not do themselves: load and
    make signing keys (private keys are out of the request role's reach) and register the built-in
    GraphiQL client at start. Nothing a request sends runs on it."""
    try:
        pool = await _bounded_pool(url, min_size=1, max_size=size, init=_init_connection, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseUnreachable(f"cannot connect to the database at {describe(url)}: {exc}") from exc
    assert pool is not None
    return pool


async def _request_role_pending(url: str) -> bool:
    """True when migration 0012, which lets the request role log in, is not applied yet."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        if not await conn.fetchval("SELECT to_regclass('schema_migration') IS NOT NULL"):
            return True
        return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM schema_migration WHERE version = 12)")
    finally:
        await conn.close()


def _user(url: str) -> str:
    return urlsplit(url).username or "the default user"


async def connect(url: str, **kwargs: Any) -> asyncpg.Connection:
    """One connection (for the CLI), with the same error wording as the pool."""
    try:
        conn = await asyncpg.connect(url, timeout=10, **kwargs)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseUnreachable(f"cannot connect to the database at {describe(url)}: {exc}") from exc
    await _init_connection(conn)
    return conn


async def listening_connection(url: str) -> asyncpg.Connection:
    """The event listener's own connection (resolvers.events), with TCP keepalives like the pools'."""
    conn = await asyncpg.connect(url, timeout=10)
    keep_alive(conn)
    return conn


def describe(url: str) -> str:
    """The URL without its password, fit for an error message or a log line."""
    parts = urlsplit(url)
    host = parts.hostname or "local socket"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"
