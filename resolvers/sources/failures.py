"""Why a call to a source failed. Kept inside the hub: callers only ever see ``SourceUnavailable``
naming the source, while ``sources`` shows the kind and the server log the detail.

    SourceFailure
    ├── SourceTimeout            TIMEOUT         no complete answer within the time allowed
    ├── SourceConnectionFailed   CONNECTION      refused, reset or dropped
    ├── SourceBadStatus          BAD_STATUS      an HTTP status other than 200
    ├── SourceUpstreamError      UPSTREAM_ERROR  the upstream reported an error (GraphQL errors, SQL errors)
    ├── SourceMalformed          MALFORMED       not JSON, not the configured shape, or a value not a finite number
    ├── SourceTooLarge           TOO_LARGE       more bytes than the source's max_bytes
    └── CircuitOpen              CIRCUIT_OPEN    not called: the circuit is open
"""

from __future__ import annotations


class SourceFailure(Exception):
    """Base of every failed call; ``detail`` is for the log, never for the caller."""

    kind = "UPSTREAM_ERROR"
    retryable = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SourceTimeout(SourceFailure):
    kind = "TIMEOUT"
    retryable = True


class SourceConnectionFailed(SourceFailure):
    kind = "CONNECTION"
    retryable = True


class SourceBadStatus(SourceFailure):
    kind = "BAD_STATUS"

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP status {status}")
        self.status = status
        # 5xx and 429 may pass; 4xx will not change by asking again.
        self.retryable = status >= 500 or status == 429


class SourceUpstreamError(SourceFailure):
    kind = "UPSTREAM_ERROR"


class SourceMalformed(SourceFailure):
    kind = "MALFORMED"


class SourceTooLarge(SourceFailure):
    kind = "TOO_LARGE"


class CircuitOpen(SourceFailure):
    kind = "CIRCUIT_OPEN"


ERROR_KINDS = (
    "TIMEOUT",
    "CONNECTION",
    "BAD_STATUS",
    "UPSTREAM_ERROR",
    "MALFORMED",
    "TOO_LARGE",
)
