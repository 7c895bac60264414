"""Sending the outbox's deliveries: claimed, signed, POSTed, and their outcome recorded.

At least once: a delivery is claimed by counting the attempt and moving its next attempt a lease
ahead (longer than the request's timeout), in a committed statement, before the request is sent.
A hub that dies while the receiver holds the request leaves it PENDING; when the lease expires the
next leader sends it again, with the same ``X-Hub-Delivery`` id and the next ``X-Hub-Attempt``, so
the receiver can drop what it has already acted on. ``FOR UPDATE SKIP LOCKED`` keeps two senders
(a leader handing over) from claiming the same row.

The signature (docs/reports.md, "Reminders and webhooks"): ``X-Hub-Signature-256: sha256=`` and
the hex HMAC-SHA256, keyed with the webhook's secret, of ``<X-Hub-Timestamp>.<body>``; the timestamp
is inside the signed text so that a captured request cannot be replayed later with a new one.

Where a URL may point is checked before each attempt on the addresses its host resolves to: public
addresses, loopback only when the operator allows it (development), and the private networks the
operator names (a closed government network). The request then goes to the address checked, with
the URL's host in ``Host`` and in TLS (SNI and the certificate's name): a name that resolves
elsewhere a moment later (DNS rebinding) cannot move it. Redirects are not followed, and the
answer's body is never read: only its status counts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson

from nrhub.auth.address import Network

MAX_DELAY = 3600.0  # seconds: the longest wait between two attempts
_CLAIM = """
UPDATE webhook_delivery d
SET attempts = d.attempts + 1, next_attempt_at = clock_timestamp() + $2::float8 * interval '1 second'
FROM (SELECT d.id FROM webhook_delivery d JOIN webhook w ON w.id = d.webhook_id
      WHERE d.status = 'PENDING' AND d.next_attempt_at <= clock_timestamp() AND NOT w.disabled
      ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED) due, webhook w, webhook_secret s
WHERE d.id = due.id AND w.id = d.webhook_id AND s.webhook_id = d.webhook_id
RETURNING d.id, d.event, d.payload::text AS payload, d.attempts, w.url, s.secret
"""
# Only the claim it answers: a delivery claimed again meanwhile (its lease expired) is left to that claim.
_RECORD = """
UPDATE webhook_delivery SET status = $3, last_status = $4, last_error = $5,
       delivered_at = CASE WHEN $3 = 'DELIVERED' THEN clock_timestamp() END,
       next_attempt_at = CASE WHEN $3 = 'PENDING' THEN clock_timestamp() + $6::float8 * interval '1 second'
                              ELSE next_attempt_at END
WHERE id = $1 AND attempts = $2 AND status = 'PENDING'
"""
_FAIL_DISABLED = """
UPDATE webhook_delivery d SET status = 'FAILED', last_error = 'the webhook was disabled'
FROM webhook w WHERE w.id = d.webhook_id AND w.disabled AND d.status = 'PENDING'
"""


class RefusedAddress(Exception):
    """The URL's host resolves to an address the hub may not call."""


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    event: str
    payload: str
    attempts: int
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    status_code: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How deliveries are sent and retried (settings webhook_*, docs/operations.md)."""

    timeout: float = 10.0
    max_attempts: int = 8
    retry_base: float = 30.0
    allow_loopback: bool = False
    allowed_networks: tuple[Network, ...] = ()
    batch: int = 20

    @property
    def lease(self) -> float:
        """How long a claimed delivery is left alone: its request's timeout, and some."""
        return self.timeout + 5.0

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones: doubling, capped, jittered."""
        base = min(self.retry_base * 2.0 ** (attempts - 1), MAX_DELAY)
        return base * random.uniform(1.0, 1.2)  # spread the retries of many deliveries that failed together


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value of a body sent at ``timestamp`` (unix seconds, as sent)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def check_address(url: str, policy: DeliveryPolicy) -> str:
    """The address to call for the URL: raise RefusedAddress unless every address its host resolves
    to may be called."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RefusedAddress(f"cannot resolve {host}: {exc}") from exc
    allowed = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not _allowed(address, policy):
            raise RefusedAddress(
                f"{host} resolves to {address}, which webhooks may not reach "
                "(settings webhook_allow_loopback, webhook_allowed_networks)"
            )
        allowed.append(address)
    if not allowed:
        raise RefusedAddress(f"cannot resolve {host}: no address")
    return str(allowed[0])


def pinned(url: str, address: str) -> tuple[str, str, dict[str, str]]:
    """The URL with its host replaced by the checked address, the Host header it had, and the TLS
    name to verify (httpx's ``sni_hostname``): the request reaches what was checked, as the name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    at = f"[{address}]" if ":" in address else address
    netloc = f"{at}:{parts.port}" if parts.port else at
    tls = {"sni_hostname": host} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), parts.netloc.rpartition("@")[2], tls


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: DeliveryPolicy) -> bool:
    if address.is_loopback:
        return policy.allow_loopback
    if any(address in network for network in policy.allowed_networks):
        return True
    # Private, link-local (cloud metadata at 169.254.169.254), shared, reserved, multicast: not global.
    return address.is_global and not address.is_multicast


async def claim(conn: asyncpg.Connection, policy: DeliveryPolicy) -> list[Claimed]:
    """Claim the due deliveries (at most ``policy.batch``), counting the attempt before it is made."""
    await conn.execute(_FAIL_DISABLED)
    return [Claimed(**r) for r in await conn.fetch(_CLAIM, policy.batch, policy.lease)]


async def send(http: httpx.AsyncClient, delivery: Claimed, policy: DeliveryPolicy) -> Outcome:
    """POST one delivery, signed; any 2xx answer delivers it, anything else (or nothing) does not."""
    try:
        url, host, tls = pinned(delivery.url, await check_address(delivery.url, policy))
    except RefusedAddress as exc:
        return Outcome(False, None, str(exc))
    body = orjson.dumps({"delivery": delivery.id, **orjson.loads(delivery.payload)})
    timestamp = str(int(time.time()))
    headers = {
        "Host": host,
        "Content-Type": "application/json",
        "User-Agent": "nrhub-webhooks/1",
        "X-Hub-Event": delivery.event,
        "X-Hub-Delivery": str(delivery.id),
        "X-Hub-Attempt": str(delivery.attempts),
        "X-Hub-Timestamp": timestamp,
        "X-Hub-Signature-256": sign(delivery.secret, timestamp, body),
    }
    try:
        async with asyncio.timeout(policy.timeout):  # the whole exchange, not each read
            async with http.stream("POST", url, content=body, headers=headers, extensions=tls) as response:
                code = response.status_code  # the body is never read: a receiver cannot make the hub buffer
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__)
    if 200 <= code < 300:
        return Outcome(True, code, None)
    return Outcome(False, code, f"the receiver answered {code}")


async def record(conn: asyncpg.Connection, delivery: Claimed, outcome: Outcome, policy: DeliveryPolicy) -> str:
    """Store an attempt's outcome: DELIVERED, PENDING again after a back-off, or FAILED for good."""
    if outcome.delivered:
        status = "DELIVERED"
    else:
        status = "FAILED" if delivery.attempts >= policy.max_attempts else "PENDING"
    await conn.execute(
        _RECORD,
        delivery.id,
        delivery.attempts,
        status,
        outcome.status_code,
        outcome.error,
        policy.delay(delivery.attempts),
    )
    return status


async def deliver_due(conn: asyncpg.Connection, http: httpx.AsyncClient, policy: DeliveryPolicy) -> int:
    """Claim, send concurrently and record one batch of due deliveries; returns how many were tried."""
    claimed = await claim(conn, policy)
    outcomes: Sequence[Outcome] = await asyncio.gather(*(send(http, d, policy) for d in claimed))
    for delivery, outcome in zip(claimed, outcomes, strict=True):
        await record(conn, delivery, outcome, policy)
    return len(claimed)
