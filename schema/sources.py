"""The ``sources`` query: each federated source and its health, as this hub process sees it."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from nrhub.resolvers.scope import Scope
from nrhub.resolvers.sources.connectors import KINDS
from nrhub.resolvers.sources.source import Source as SourceRuntime


@strawberry.enum(description="OK; DEGRADED: its last call failed; CIRCUIT_OPEN: not called until a probe succeeds.")
class SourceState(Enum):
    OK = "OK"
    DEGRADED = "DEGRADED"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"


# Derived from the connector registry, so that every kind a source can be configured with is a value
# here (a kind missing from this enum made the ``sources`` query answer INTERNAL).
_KINDS: type[Enum] = Enum("SourceKind", [(name.upper(), name) for name in KINDS])  # type: ignore[misc]
SourceKind = strawberry.enum(_KINDS)


@strawberry.enum(description="Why a call to a source failed.")
class SourceErrorKind(Enum):
    TIMEOUT = "TIMEOUT"
    CONNECTION = "CONNECTION"
    BAD_STATUS = "BAD_STATUS"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    MALFORMED = "MALFORMED"
    TOO_LARGE = "TOO_LARGE"


@strawberry.type(
    description="A federated source: a national database or ministry API the hub reads on demand. "
    "Health is per hub process, over the calls of the last few minutes."
)
class Source:
    name: str
    kind: SourceKind  # type: ignore[valid-type]
    state: SourceState
    indicators: list[str] = strawberry.field(description="The indicators it serves that you may read.")
    last_error_at: datetime | None
    last_error_kind: SourceErrorKind | None
    last_success_at: datetime | None
    latency_p50_ms: float | None = strawberry.field(description="Median latency of recent calls.")
    latency_p95_ms: float | None
    calls: int = strawberry.field(description="Calls (attempts) in the recent window.")
    failures: int = strawberry.field(description="Failed calls in the recent window.")
    consecutive_failures: int
    stale_served: int = strawberry.field(
        description="Values served from the hub's cache, marked stale, while the source could not answer."
    )
    timeout_seconds: float
    cache_ttl_seconds: float = strawberry.field(description="0 when values are not cached.")

    @classmethod
    def of(cls, source: SourceRuntime, scope: Scope) -> Source:
        report = source.report()
        return cls(
            name=source.name,
            kind=SourceKind(source.kind),
            state=SourceState(report.state),
            indicators=[code for code in source.indicators if scope.may_read(code)],
            last_error_at=report.last_error_at,
            last_error_kind=SourceErrorKind(report.last_error_kind) if report.last_error_kind else None,
            last_success_at=report.last_success_at,
            latency_p50_ms=report.latency_p50_ms,
            latency_p95_ms=report.latency_p95_ms,
            calls=report.calls,
            failures=report.failures,
            consecutive_failures=report.consecutive_failures,
            stale_served=report.stale_served,
            timeout_seconds=source.policy.timeout,
            cache_ttl_seconds=source.policy.cache_ttl,
        )
