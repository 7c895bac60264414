"""The caller, as every data function sees it: an agency, a client, scopes, and exact grants."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Grants:
    """What a caller may read, decided before any data is fetched.

    ``indicators`` is the exact set of readable indicator codes. ``regions`` holds the unit codes
    whose subtrees (and predecessors) the caller may see below the national level; ``None`` means
    every region. National values stay visible to anyone who may read the indicator.
    """

    indicators: frozenset[str]
    regions: frozenset[str] | None = None

    def may_read(self, indicator_code: str) -> bool:
        return indicator_code in self.indicators


NO_GRANTS = Grants(indicators=frozenset(), regions=frozenset())


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated (or anonymous) caller."""

    grants: Grants = NO_GRANTS
    scopes: frozenset[str] = field(default_factory=frozenset)
    agency_code: str | None = None
    client_id: str | None = None
    user: str | None = None
    token_expires_at: int | None = None
    token_id: str | None = None  # the access token's jti, for revocation checks of long connections

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


ANONYMOUS = Principal()
