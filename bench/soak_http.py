"""The soak's HTTP side: tokens that stay fresh for an hour, GraphQL calls, and every outcome counted.

A soak outlives access tokens (``HUB_TOKEN_LIFETIME``, 15 minutes by default) and meets the token
endpoint's limit per address (``HUB_TOKEN_RATE_LIMIT``, 30 a minute, and every client here shares
127.0.0.1), so each client's token is fetched once and fetched again only when it nears its expiry
or the hub refuses it. Every request's outcome is counted by what it was (``read:table``,
``write:submit``, ...): ``ok``, or the HTTP status and the GraphQL error code, ``transport`` (no
answer: connection refused or reset) or ``timeout``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

REQUEST_SECONDS = 15.0
REFRESH_BEFORE = 120.0  # seconds before expiry: a subscriber may stay a minute, a request a few seconds
# Failures that say "not now" rather than "never": the database away (503, SOURCE_UNAVAILABLE), the
# rate limit, a token refused (fetched again first), and INTERNAL, retried but counted, since it is a bug.
TRANSIENT_CODES = frozenset({"SOURCE_UNAVAILABLE", "RATE_LIMITED", "UNAUTHENTICATED", "INTERNAL"})


@dataclass(frozen=True)
class Client:
    """An OAuth client the soak registered: its agency, scopes and secret."""

    name: str
    agency: str
    scopes: str
    client_id: str
    secret: str


@dataclass(frozen=True)
class Answer:
    """One request's outcome: its data when acknowledged, else whether to try again, and when."""

    data: dict[str, Any] | None
    outcome: str
    transient: bool
    retry_after: float = 1.0
    token_refused: bool = False


class Tally:
    """Requests by kind and outcome."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def note(self, kind: str, outcome: str) -> None:
        self.counts[(kind, outcome)] += 1

    def lines(self) -> list[str]:
        kinds = sorted({kind for kind, _ in self.counts})
        out = []
        for kind in kinds:
            outcomes = sorted(((o, n) for (k, o), n in self.counts.items() if k == kind), key=lambda x: -x[1])
            out.append(f"  {kind:16} " + ", ".join(f"{o} {n:,}" for o, n in outcomes))
        return out

    def total(self, outcome: str | None = None) -> int:
        return sum(n for (_, o), n in self.counts.items() if outcome is None or o == outcome)


class Tokens:
    """One access token per client, fetched when missing, near its expiry, or refused."""

    def __init__(self, http: httpx.AsyncClient, tally: Tally) -> None:
        self.http, self.tally = http, tally
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, client: Client, *, stale: str | None = None, within: float = 60.0) -> str | None:
        """A usable token for ``client`` (not ``stale``, one the hub refused), or None after ``within`` seconds."""
        lock = self._locks.setdefault(client.client_id, asyncio.Lock())
        deadline = time.monotonic() + within
        async with lock:
            while True:
                held = self._tokens.get(client.client_id)
                if held is not None and held[0] != stale and held[1] - time.monotonic() > REFRESH_BEFORE:
                    return held[0]
                wait = await self._fetch(client)
                if wait is None:
                    return self._tokens[client.client_id][0]
                if held is not None and held[0] != stale and held[1] - time.monotonic() > 5:
                    return held[0]  # not refreshed now (the database is away?), but still good for a while
                if time.monotonic() + wait > deadline:
                    return None
                await asyncio.sleep(wait)

    async def _fetch(self, client: Client) -> float | None:
        """Fetch a token; None when it came, else the seconds to wait before trying again."""
        try:
            response = await self.http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, client.secret),
                timeout=REQUEST_SECONDS,
            )
        except httpx.TimeoutException:
            self.tally.note("token", "timeout")
            return 1.0
        except httpx.TransportError:
            self.tally.note("token", "transport")
            return 1.0
        if response.status_code != 200:
            self.tally.note("token", f"{response.status_code} {_oauth_error(response)}")
            return _retry_after(response, 2.0)
        body = response.json()
        self._tokens[client.client_id] = (str(body["access_token"]), time.monotonic() + float(body["expires_in"]))
        self.tally.note("token", "ok")
        return None


async def graphql(
    http: httpx.AsyncClient, tally: Tally, kind: str, token: str | None, query: str, variables: dict[str, Any]
) -> Answer:
    """POST one GraphQL request; count and classify its outcome."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=REQUEST_SECONDS
        )
    except httpx.TimeoutException:
        tally.note(kind, "timeout")
        return Answer(None, "timeout", transient=True)
    except httpx.TransportError:
        tally.note(kind, "transport")
        return Answer(None, "transport", transient=True)
    answer = _classify(response)
    tally.note(kind, answer.outcome)
    return answer


def _classify(response: httpx.Response) -> Answer:
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content-type").split(";")[0]
        return Answer(None, f"{response.status_code} {kind}", transient=response.status_code >= 500)
    errors = body.get("errors") if isinstance(body, dict) else None
    if response.status_code == 200 and not errors and isinstance(body.get("data"), dict):
        return Answer(body["data"], "ok", transient=False)
    code = ((errors or [{}])[0].get("extensions") or {}).get("code", "no code") if errors else "no errors"
    refused = response.status_code == 401 or code == "UNAUTHENTICATED"
    transient = response.status_code >= 500 or response.status_code in (401, 429) or code in TRANSIENT_CODES
    return Answer(None, f"{response.status_code} {code}", transient, _retry_after(response, 1.0), token_refused=refused)


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return min(10.0, max(0.2, float(response.headers.get("retry-after", default))))
    except ValueError:
        return default


def _oauth_error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", "no error"))
    except ValueError:
        return "not JSON"
