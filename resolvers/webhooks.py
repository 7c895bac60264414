"""Outbound webhooks that agencies register for reminders, and the deliveries they can inspect.

An agency registers a URL for itself (never for another: the agency is the token's) and is given
an HMAC secret once; the hub signs every delivery with it (resolvers.webhook_delivery). The secret
is kept in its own table that the request role may write but not read (migration 0016), because the
hub must read it back to sign and so cannot keep only a hash. Registering and disabling are audited.

The URL must be https, or http on the loopback interface for development (the rule of OAuth
redirect URIs, auth.clients). Where it may point is decided again at every delivery, on the
addresses its host resolves to then (resolvers.webhook_delivery): the hub calls URLs that callers
chose, so it must not be turned into a probe of its own network.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput, NotFound
from nrhub.resolvers.pagination import Page, PageRequest, make_page

KINDS = ("BEFORE_DEADLINE", "OVERDUE")
STATUSES = ("PENDING", "DELIVERED", "FAILED")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
MAX_WEBHOOKS = 20  # per agency: each reminder is sent to every one of them
MAX_URL_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    agency_code: str
    url: str
    events: list[str]
    disabled: bool
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: int
    event: str
    payload: str  # JSON text
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


_WEBHOOK_COLUMNS = "id, agency_code, url, events, disabled, created_by, created_at"
_INSERT = f"""
INSERT INTO webhook (agency_code, url, events, created_by, created_at) VALUES ($1, $2, $3, $4, $5)
RETURNING {_WEBHOOK_COLUMNS}
"""
_INSERT_SECRET = "INSERT INTO webhook_secret (webhook_id, secret) VALUES ($1, $2)"
_COUNT = "SELECT count(*) FROM webhook WHERE agency_code = $1 AND NOT disabled"
_DISABLE = f"""
UPDATE webhook SET disabled = true WHERE id = $1 AND agency_code = $2 RETURNING {_WEBHOOK_COLUMNS}
"""
# $1 NULL: every agency's (the operator's `nrhub webhooks list`; requests always name their agency).
_SELECT_OWN = f"SELECT {_WEBHOOK_COLUMNS} FROM webhook WHERE $1::text IS NULL OR agency_code = $1 ORDER BY id"
_SELECT_BY_ID = f"SELECT {_WEBHOOK_COLUMNS} FROM webhook WHERE id = $1"
_SELECT_ONE = f"SELECT {_WEBHOOK_COLUMNS} FROM webhook WHERE id = $1 AND agency_code = $2"
# Newest first; the cursor is the delivery id.
_SELECT_DELIVERIES = """
SELECT d.id, d.webhook_id, d.event, d.payload::text AS payload, d.status, d.attempts, d.next_attempt_at,
       d.last_status, d.last_error, d.created_at, d.delivered_at
FROM webhook_delivery d JOIN webhook w ON w.id = d.webhook_id
WHERE d.webhook_id = $1 AND w.agency_code = $2 AND ($3::text IS NULL OR d.status = $3)
  AND ($4::bigint IS NULL OR d.id < $4)
ORDER BY d.id DESC LIMIT $5
"""


def check_url(url: str) -> str:
    """The URL as registered, or BAD_USER_INPUT saying what is wrong with it."""
    if len(url) > MAX_URL_LENGTH:
        raise BadUserInput(f"a webhook URL has at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing is the check: a port out of range raises
    except ValueError:
        raise BadUserInput(f"{url!r} is not a URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadUserInput("a webhook URL must be https://host/... (or http on loopback for development)")
    if parts.username is not None or parts.fragment:
        raise BadUserInput("a webhook URL carries no user name, password or #fragment: the signature authenticates")
    host = parts.netloc.rpartition(":")[0] if parts.port else parts.netloc
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise BadUserInput(f"webhook URL {url} must use https (or loopback http: 127.0.0.1, localhost, [::1])")
    return url


def check_events(events: list[str]) -> list[str]:
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in KINDS]
    if unknown or not chosen:
        raise BadUserInput(f"events must name one or more of {', '.join(KINDS)}")
    return chosen


async def register_webhook(
    conn: asyncpg.Connection, actor: Actor, url: str, events: list[str], *, now: datetime
) -> tuple[Webhook, str]:
    """Register a webhook of the actor's agency; returns it and its secret (shown once)."""
    assert actor.agency is not None
    url, events = check_url(url), check_events(events)
    if await conn.fetchval(_COUNT, actor.agency) >= MAX_WEBHOOKS:
        raise BadUserInput(f"an agency has at most {MAX_WEBHOOKS} webhooks; disable one first")
    row = await conn.fetchrow(_INSERT, actor.agency, url, events, actor.user or actor.client or "unknown", now)
    secret = "whsec_" + secrets.token_urlsafe(32)
    await conn.execute(_INSERT_SECRET, row["id"], secret)
    webhook = Webhook(**row)
    await append_entry(
        conn, actor, "webhook.register", f"webhook:{webhook.id}", after={"url": url, "events": events}, at=now
    )
    return webhook, secret


async def disable_webhook(conn: asyncpg.Connection, actor: Actor, webhook_id: int, *, now: datetime) -> Webhook:
    """Stop a webhook of the actor's own agency; another agency's is NOT_FOUND, as if it did not exist."""
    before = await conn.fetchrow(_SELECT_ONE, webhook_id, actor.agency)
    if before is None:
        raise NotFound(f"your agency has no webhook {webhook_id}")
    row = await conn.fetchrow(_DISABLE, webhook_id, actor.agency)
    await append_entry(
        conn,
        actor,
        "webhook.disable",
        f"webhook:{webhook_id}",
        before={"disabled": before["disabled"]},
        after={"disabled": True},
        at=now,
    )
    return Webhook(**row)


async def list_webhooks(db: Any, agency: str | None) -> list[Webhook]:
    """The agency's webhooks; with None, every agency's (operators only: requests always pass theirs)."""
    return [Webhook(**r) for r in await db.fetch(_SELECT_OWN, agency)]


async def fetch_webhook(db: Any, webhook_id: int) -> Webhook | None:
    """Any agency's webhook by id, for operators."""
    row = await db.fetchrow(_SELECT_BY_ID, webhook_id)
    return Webhook(**row) if row else None


async def list_deliveries(
    db: Any, agency: str, webhook_id: int, status: str | None, request: PageRequest
) -> Page[Delivery]:
    """A page of one of the agency's webhooks' deliveries, newest first; another agency's is NOT_FOUND."""
    if await db.fetchrow(_SELECT_ONE, webhook_id, agency) is None:
        raise NotFound(f"your agency has no webhook {webhook_id}")
    after = request.after[0] if request.after else None
    if after is not None and not isinstance(after, int):
        raise BadUserInput("after is not a cursor this API returned")
    rows = await db.fetch(_SELECT_DELIVERIES, webhook_id, agency, status, after, request.first + 1)
    return make_page([Delivery(**r) for r in rows], request, lambda d: (d.id,))
