"""What ``sources`` reports about each source: state, last error, and latency over a recent window.

Every upstream attempt is recorded (its latency, and whether it failed); the percentiles are
taken over the attempts of the last ``WINDOW_SECONDS`` (at most ``WINDOW_CALLS`` of them). Kept in
this process: several hub processes each report what they saw.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from nrhub.resolvers.sources.breaker import CLOSED, Breaker

WINDOW_SECONDS = 300
WINDOW_CALLS = 1000


@dataclass(frozen=True, slots=True)
class HealthReport:
    state: str  # OK, DEGRADED or CIRCUIT_OPEN
    last_error_at: datetime | None
    last_error_kind: str | None
    last_success_at: datetime | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    calls: int  # attempts in the window
    failures: int  # failed attempts in the window
    consecutive_failures: int
    stale_served: int  # cells answered from the cache, stale, since the process started


class Health:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._attempts: deque[tuple[float, float, bool]] = deque(maxlen=WINDOW_CALLS)
        self.last_error_at: datetime | None = None
        self.last_error_kind: str | None = None
        self.last_success_at: datetime | None = None
        self.last_call_failed = False
        self.stale_served = 0

    def record(self, latency: float, failure_kind: str | None) -> None:
        self._attempts.append((self.clock(), latency, failure_kind is None))
        if failure_kind is None:
            self.last_success_at = datetime.now(UTC)
            self.last_call_failed = False
        else:
            self.last_error_at = datetime.now(UTC)
            self.last_error_kind = failure_kind
            self.last_call_failed = True

    def report(self, breaker: Breaker) -> HealthReport:
        since = self.clock() - WINDOW_SECONDS
        recent = [(latency, ok) for at, latency, ok in self._attempts if at >= since]
        latencies = sorted(latency * 1000 for latency, _ in recent)
        if breaker.state != CLOSED:
            state = "CIRCUIT_OPEN"
        elif self.last_call_failed:
            state = "DEGRADED"
        else:
            state = "OK"
        return HealthReport(
            state=state,
            last_error_at=self.last_error_at,
            last_error_kind=self.last_error_kind,
            last_success_at=self.last_success_at,
            latency_p50_ms=_percentile(latencies, 50),
            latency_p95_ms=_percentile(latencies, 95),
            calls=len(recent),
            failures=sum(1 for _, ok in recent if not ok),
            consecutive_failures=breaker.consecutive_failures,
            stale_served=self.stale_served,
        )


def _percentile(ordered: list[float], p: int) -> float | None:
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)
