"""A circuit breaker per source: after ``failures`` consecutive failed calls the hub stops calling
(answering at once from its cache or with SOURCE_UNAVAILABLE); after ``cooldown`` seconds one
probe call is let through, and its outcome closes the circuit or opens it for another cool-down.

State lives in this process (README, Federation): each hub process learns a source's health on
its own, which costs at most ``failures`` calls per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"


class Breaker:
    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.clock = clock
        self.consecutive_failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._probing or self.clock() - self._opened_at >= self.cooldown:
            return HALF_OPEN
        return OPEN

    def allow(self) -> bool:
        """May a call be made now? In HALF_OPEN, exactly one caller gets to probe."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def succeeded(self) -> None:
        self.consecutive_failures = 0
        self._opened_at = None
        self._probing = False

    def abandoned(self) -> None:
        """A call ended without an outcome (cancelled): let the next caller probe."""
        self._probing = False

    def failed(self) -> None:
        self.consecutive_failures += 1
        if self._probing or self.consecutive_failures >= self.threshold:
            self._opened_at = self.clock()
        self._probing = False
