"""The scope grammar (DESIGN: security model), what a set of scopes grants, and how grants combine."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import asyncpg

from nrhub.auth.operator_errors import OperatorError

FIXED = {"catalog:read", "data:read", "reports:submit", "reports:review", "audit:read", "admin"}
_PARAMETRISED = re.compile(r"^(indicator:[A-Z][A-Z0-9_]{1,63}|field:[a-z_]+|region:(VN|[0-9]{2}|[0-9]{5}))$")
REGION = "region:"

READING = {"catalog:read", "data:read"}


class ScopeError(OperatorError):
    """A scope is not one the hub knows, or grants cannot be combined; the message says which."""


def check_scopes(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> None:
    for scope in scopes:
        if scope not in FIXED and not _PARAMETRISED.match(scope):
            raise ScopeError(f"unknown scope {scope!r}")


# What each parametrised scope names: a code of this catalogue table (a unit at any validity, DESIGN).
_NAMED_IN = {"field": "indicator_field", "indicator": "indicator", "region": "admin_unit"}


async def check_catalogue(conn: asyncpg.Connection, scopes: Collection[str]) -> None:
    """Grammar, then the catalogue: a scope naming no field, indicator or unit would grant nothing in
    silence (``field:finance`` for ``field:public_finance``), so it is refused, naming it."""
    check_scopes(frozenset(scopes))
    problems = []
    for kind, table in _NAMED_IN.items():
        asked = named(frozenset(scopes), f"{kind}:")
        if not asked:
            continue
        known = await conn.fetchval(f"SELECT array_agg(code) FROM {table} WHERE code = ANY($1::text[])", asked)
        unknown = [name for name in asked if name not in (known or ())]
        if unknown:
            problem = f"unknown {kind}{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
            if kind == "field":  # nine of them, worth listing; indicators and units are too many
                fields = await conn.fetchval("SELECT array_agg(code ORDER BY code) FROM indicator_field")
                problem += f"; known fields: {', '.join(fields or ())}"
            problems.append(problem)
    if problems:
        raise ScopeError("; ".join(problems))


def parse_scope(text: str | None) -> list[str]:
    """A space-delimited scope parameter (RFC 6749 section 3.3), duplicates dropped, order kept."""
    return list(dict.fromkeys((text or "").split()))


def named(scopes: frozenset[str], prefix: str) -> list[str]:
    return sorted(s[len(prefix) :] for s in scopes if s.startswith(prefix))


def is_reading(scope: str) -> bool:
    """A scope that lets its holder read, and nothing else (what an external issuer may grant)."""
    return scope in READING or bool(_PARAMETRISED.match(scope))


# Combining grants (DESIGN: "grants only narrow"). Most scopes add: a token holds a permission only if
# every grant does, so their intersection is that of the strings (for indicator: and field: scopes it
# may be narrower than the indicators both name, never wider). region: scopes restrict instead, and a
# set without any means every region (auth.resource), so dropping them all would widen the grant:
# the regions are those every restricting set names, and they are written into the result.


def _regions(scopes: Collection[str]) -> set[str] | None:
    """The region: scopes of a set; None when it has none, i.e. every region."""
    return {s for s in scopes if s.startswith(REGION)} or None


def intersect(first: Sequence[str], *others: Collection[str]) -> list[str]:
    """What every one of the sets allows, in ``first``'s order, its region restrictions kept.

    Raises ScopeError when restricting sets share no region: no scope string says "no region"."""
    sets = (first, *others)
    kept = [s for s in first if not s.startswith(REGION) and all(s in other for other in others)]
    restricting = [regions for regions in map(_regions, sets) if regions is not None]
    if not restricting:
        return kept
    common = set.intersection(*restricting)
    if not common:
        raise ScopeError("the grants have no region in common")
    return kept + sorted(common)


def beyond(asked: Collection[str], grant: Collection[str]) -> list[str]:
    """The asked scopes a grant does not allow: not in it, except a region that narrows a grant of every
    region."""
    everywhere = _regions(grant) is None
    return [s for s in asked if s not in grant and not (everywhere and s.startswith(REGION) and _PARAMETRISED.match(s))]
