"""A federated source as configured: where it lives, what to ask it, and how to protect the hub from it.

``hub/config/sources.py`` builds these from the ``[[source]]`` tables of the settings file and checks them;
everything here is plain, immutable data, plus the checks of the keys several kinds share (a URL,
headers, a field mapping). Each kind's own target is defined beside its connector (connectors.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_MAPPING_KEYS = {"rows", "unit", "period", "value", "dims", "status", "indicator"}


class SourceConfigError(ValueError):
    """A ``[[source]]`` key is wrong; the message says which and how (hub/config/sources.py adds where)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """How the hub protects itself (and the source) on every call; README "Federation" explains each."""

    timeout: float = 3.0  # seconds per attempt
    max_concurrency: int = 4  # calls in flight from this process
    retries: int = 1  # extra attempts after a transient failure, for idempotent calls only
    retry_backoff: float = 0.2  # seconds: attempt n waits a random time in [0, backoff * 2**n)
    breaker_failures: int = 5  # consecutive failed calls that open the circuit
    breaker_cooldown: float = 30.0  # seconds the circuit stays open before one probe call
    cache_ttl: float = 0.0  # seconds a value is served without asking again; 0: no cache
    max_stale: float = 86_400.0  # seconds past which a cached value is not served even while the source is down
    cache_entries: int = 100_000  # cells kept, least recently used dropped first
    max_bytes: int = 10_000_000  # largest answer read, counted while it streams in
    latest_window: int = 12  # periods looked back when the latest value is asked for
    batch_window: float = 0.005  # seconds loads for this source are gathered into one call
    max_units: int = 0  # most unit codes in one call (0: no limit), for APIs whose URLs have a length limit
    status: str = "OFFICIAL"  # status of values whose rows carry none


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Where the parts of a value are in a JSON answer: the list of rows, then fields of each row."""

    rows: tuple[str, ...] = ()  # path from the top of the answer (GraphQL: from ``data``) to the row list
    unit: str = "unit"
    period: str = "period"
    value: str = "value"
    dims: str | None = "dims"  # absent in a row: the total ('')
    status: str | None = "status"  # absent in a row: the policy's status
    indicator: str | None = None  # needed when one call answers for several indicators


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``[[source]]``: its name (as indicators' ``source`` names it), kind, target and policy.

    ``indicators`` maps each hub indicator code the source serves to its SQL (postgres) or to the
    name the upstream knows it by (http, graphql).
    """

    name: str
    kind: str  # a name in connectors.KINDS
    indicators: tuple[tuple[str, str], ...]
    target: object  # the kind's own target (PostgresTarget, HttpTarget, ...), checked by its connector
    policy: Policy = Policy()

    def upstream_name(self, indicator: str) -> str:
        return dict(self.indicators)[indicator]


def parse_url(table: Mapping[str, Any]) -> str:
    """``url``: an http:// or https:// URL."""
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SourceConfigError("url must be an http:// or https:// URL")
    return url


def parse_mapping(raw: Any) -> FieldMapping:
    """``[source.mapping]``: where the parts of a value are in each JSON row."""
    if not isinstance(raw, dict):
        raise SourceConfigError("[source.mapping] must be a table")
    for key, value in raw.items():
        if key not in _MAPPING_KEYS:
            raise SourceConfigError(f"unknown key {key!r} in [source.mapping]")
        if not isinstance(value, str) or (key != "rows" and not value):
            raise SourceConfigError(f"mapping {key} must be a field name")
    rows = tuple(p for p in raw.get("rows", "").split(".") if p)
    fields = {k: v for k, v in raw.items() if k != "rows"}
    return FieldMapping(rows=rows, **fields)


def parse_headers(raw: Any) -> tuple[tuple[str, str], ...]:
    """``[source.headers]``: header names to values, sent with every call."""
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise SourceConfigError("headers must map names to strings")
    return tuple(sorted(raw.items()))
