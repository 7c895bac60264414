"""A federated source as configured: where it lives, what to ask it, and how to protect the hub from it.

``hub/sources.py`` builds these from the ``[[source]]`` tables of the settings file and checks them;
everything here is plain, immutable data.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("postgres", "http", "graphql")


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
class PostgresTarget:
    """Another PostgreSQL database, read through its own read-only pool.

    Each indicator's SQL gets ``$1`` (unit codes, ``text[]``) and ``$2`` (periods, ``text[]``) and
    returns columns ``unit``, ``period``, ``value`` and optionally ``dims`` and ``status``.
    """

    url: str
    pool_size: int = 2


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """A JSON API: a URL template with ``{indicator}`` or ``{indicators}``, ``{units}``, ``{periods}``."""

    url: str
    mapping: FieldMapping
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    idempotent: bool = True

    @property
    def batches_indicators(self) -> bool:
        return "{indicators}" in self.url or self.method == "POST"


@dataclass(frozen=True, slots=True)
class GraphQLTarget:
    """A remote GraphQL endpoint and one query, with ``$indicator`` or ``$indicators``, ``$units``, ``$periods``."""

    url: str
    query: str
    mapping: FieldMapping
    batches_indicators: bool = False
    headers: tuple[tuple[str, str], ...] = ()


Target = PostgresTarget | HttpTarget | GraphQLTarget


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``[[source]]``: its name (as indicators' ``source`` names it), kind, target and policy.

    ``indicators`` maps each hub indicator code the source serves to its SQL (postgres) or to the
    name the upstream knows it by (http, graphql).
    """

    name: str
    kind: str
    indicators: tuple[tuple[str, str], ...]
    target: Target
    policy: Policy = Policy()

    def upstream_name(self, indicator: str) -> str:
        return dict(self.indicators)[indicator]
