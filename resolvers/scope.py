"""The units a caller's region grants reach, resolved once per request for use inside SQL."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from nrhub.auth.principal import Grants
from nrhub.resolvers.queryable import Queryable

# A region grant covers the unit, everything below it, and the units it was formed from (the
# 63 old provinces behind a 2025 province), at every validity. The nation is always visible:
# national aggregates stay readable for anyone granted the indicator (DESIGN, scopes).
_SELECT_SCOPE = """
WITH RECURSIVE roots AS (
    SELECT id FROM admin_unit WHERE code = ANY($1::text[])
), formed_from AS (
    SELECT id FROM roots
    UNION
    SELECT l.old_unit_id FROM unit_lineage l JOIN formed_from f ON l.new_unit_id = f.id
), subtree AS (
    SELECT id FROM formed_from
    UNION
    SELECT c.id FROM admin_unit c JOIN subtree s ON c.parent_id = s.id
)
SELECT array_agg(id) FROM (
    SELECT id FROM subtree UNION SELECT id FROM admin_unit WHERE level = 'NATION'
) AS ids
"""


@dataclass(frozen=True, slots=True)
class Scope:
    """Grants made concrete: readable indicator codes and, when limited, readable unit ids.

    Immutable throughout (tuples, frozensets): one Scope is shared by every request that presents
    the same grants (``_everywhere``).
    """

    indicators: tuple[str, ...]  # sorted, for SQL's text[]
    unit_ids: tuple[int, ...] | None  # sorted, for SQL's int[]; None: every unit
    indicator_set: frozenset[str]  # the same codes, for may_read
    unit_set: frozenset[int] = frozenset()

    def may_read(self, indicator_code: str) -> bool:
        return indicator_code in self.indicator_set

    def covers_unit(self, unit_id: int) -> bool:
        return self.unit_ids is None or unit_id in self.unit_set


async def resolve_scope(db: Queryable, grants: Grants) -> Scope:
    """Turn grants into the arrays every data query filters on (one query when regions are limited)."""
    if grants.regions is None:
        return _everywhere(grants.indicators)
    ids = await db.fetchval(_SELECT_SCOPE, sorted(grants.regions)) or []
    return Scope(tuple(sorted(grants.indicators)), tuple(sorted(ids)), grants.indicators, frozenset(ids))


@functools.lru_cache(maxsize=1024)
def _everywhere(indicators: frozenset[str]) -> Scope:
    # Callers keep presenting the same grants (one client, one token after another): sort them once.
    return Scope(tuple(sorted(indicators)), None, indicators)
