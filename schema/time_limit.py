"""The execution time limit (HUB_EXECUTION_TIMEOUT): a request running past it is cancelled, and
``asyncio.timeout`` turns that cancellation, and no other, into TimeoutError.

An HTTP request's limit runs from its arrival, not from the start of its execution: the app's
middleware (nrhub.web.deadline) sets :data:`REQUEST_DEADLINE` when the request arrives, and
execution stops at whichever comes first, that deadline or ``seconds`` after it started. Time spent
checking the token or waiting for a connection is then counted too (issue 18: with a hung database,
authenticated requests used to wait 36 s before their 10 s execution limit even began).

Until issue 17 this was a scheduler of its own (one timer per event loop, waking every 50 ms to
cancel the overdue requests), written because ``asyncio.timeout`` arms and cancels a timer for every
request. Measured beside it in one run (bench/time_limit.py, uvloop), ``asyncio.timeout`` costs
2.3 to 2.8 us a request more: well under 1% of the hub's CPU for a point lookup (0.4 ms or more,
bench/README.md), not worth 80 lines whose cancellation bookkeeping had to match asyncio's own.
It also stops a request at its deadline, not up to a tick after.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

# The event loop time by which the current HTTP request must be answered; None outside one.
REQUEST_DEADLINE: ContextVar[float | None] = ContextVar("request_deadline", default=None)


class Deadlines:
    """The time limit of one executor: ``async with deadlines.limit():`` runs a request under it."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def limit(self) -> asyncio.Timeout:
        """An ``async with`` block that raises TimeoutError when it runs past ``seconds`` or past the
        request's deadline, whichever comes first."""
        until = asyncio.get_running_loop().time() + self.seconds
        arrival_bound = REQUEST_DEADLINE.get()
        return asyncio.timeout_at(until if arrival_bound is None else min(until, arrival_bound))
