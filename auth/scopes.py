"""The scope grammar (DESIGN: security model) and what a set of scopes grants."""

from __future__ import annotations

import re

FIXED = {"catalog:read", "data:read", "reports:submit", "reports:review", "audit:read", "admin"}
_PARAMETRISED = re.compile(r"^(indicator:[A-Z][A-Z0-9_]{1,63}|field:[a-z_]+|region:(VN|[0-9]{2}|[0-9]{5}))$")


READING = {"catalog:read", "data:read"}


class ScopeError(Exception):
    """A scope is not one the hub knows."""


def check_scopes(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> None:
    for scope in scopes:
        if scope not in FIXED and not _PARAMETRISED.match(scope):
            raise ScopeError(f"unknown scope {scope!r}")


def parse_scope(text: str | None) -> list[str]:
    """A space-delimited scope parameter (RFC 6749 section 3.3), duplicates dropped, order kept."""
    return list(dict.fromkeys((text or "").split()))


def named(scopes: frozenset[str], prefix: str) -> list[str]:
    return sorted(s[len(prefix) :] for s in scopes if s.startswith(prefix))


def is_reading(scope: str) -> bool:
    """A scope that lets its holder read, and nothing else (what an external issuer may grant)."""
    return scope in READING or bool(_PARAMETRISED.match(scope))
