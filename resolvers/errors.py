"""The hub's one exception tree; ``schema`` translates it to GraphQL error codes in one place.

    HubError                      INTERNAL
    ├── Unauthenticated           UNAUTHENTICATED
    ├── Forbidden                 FORBIDDEN
    ├── NotFound                  NOT_FOUND
    ├── BadUserInput              BAD_USER_INPUT
    ├── Conflict                  CONFLICT
    ├── SourceUnavailable         SOURCE_UNAVAILABLE
    ├── RateLimited               RATE_LIMITED
    └── QueryTooComplex           QUERY_TOO_COMPLEX

Messages are written for the caller: they name the offending input, never internals. Over HTTP,
each code has one status, in one table: ``auth/http_status.py`` (a test checks it covers every code).
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub reports on purpose."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(HubError):
    code = "UNAUTHENTICATED"


class Forbidden(HubError):
    code = "FORBIDDEN"


class NotFound(HubError):
    code = "NOT_FOUND"


class BadUserInput(HubError):
    code = "BAD_USER_INPUT"


class Conflict(HubError):
    code = "CONFLICT"


class SourceUnavailable(HubError):
    code = "SOURCE_UNAVAILABLE"


class RateLimited(HubError):
    code = "RATE_LIMITED"


class QueryTooComplex(HubError):
    code = "QUERY_TOO_COMPLEX"


ERROR_CODES = frozenset(cls.code for cls in (HubError, *HubError.__subclasses__()))
