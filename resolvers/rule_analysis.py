"""Validation rule analysis over stored data: the rules run over current observations.

For a period range and a unit's subtree (the unit and every unit below it, at any validity), each
rule is checked per unit and period against the current values, as DHIS2's validation rule
analysis does; each breach is listed with both sides' values. Only figures the caller may read are
read: a rule is run only when the caller may read every indicator it names (a rule asked for by
code is FORBIDDEN otherwise; one found through a regime is listed as skipped), and the
observations are filtered by the caller's units inside the SQL, as every read is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nrhub.resolvers.errors import BadUserInput, Forbidden, NotFound
from nrhub.resolvers.rules import Rule, breach, list_rules, rules_for_regimes
from nrhub.resolvers.scope import Scope

MAX_PERIODS = 240
MAX_VIOLATIONS = 10_000


@dataclass(frozen=True, slots=True)
class Violation:
    rule: Rule
    unit_code: str
    period: str
    left: Decimal
    right: Decimal


@dataclass(frozen=True, slots=True)
class Analysis:
    rules_run: list[str]
    rules_skipped: list[str]  # not every indicator they name is readable
    violations: list[Violation]  # by rule, unit code, period
    truncated: bool  # more than MAX_VIOLATIONS


# The current values of the rules' readable indicators ($3) in the subtree of unit $1, limited to the
# caller's units ($4, null: every unit) and the periods $2.
_SELECT_VALUES = """
WITH RECURSIVE subtree AS (
    SELECT id FROM admin_unit WHERE id = $1
    UNION
    SELECT c.id FROM admin_unit c JOIN subtree s ON c.parent_id = s.id
)
SELECT c.unit_id, u.code AS unit_code, c.period, c.indicator_code, c.dims, c.value
FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id
WHERE c.unit_id IN (SELECT id FROM subtree) AND c.period = ANY($2::text[]) AND c.indicator_code = ANY($3::text[])
  AND ($4::int[] IS NULL OR c.unit_id = ANY($4::int[]))
"""


async def select_rules(
    db: Any, scope: Scope, codes: Sequence[str] | None, regimes: Sequence[str] | None
) -> tuple[list[Rule], list[str]]:
    """The rules to run (named by code, checked under the regimes, or else every rule) and the
    codes of those skipped for an unreadable indicator."""
    rules = await list_rules(db, codes)
    if codes is not None:
        unknown = sorted(set(codes) - {r.code for r in rules})
        if unknown:
            raise NotFound(f"there is no validation rule {', '.join(unknown)}")
        hidden = [r.code for r in rules if not all(scope.may_read(i) for i in r.indicators)]
        if hidden:
            raise Forbidden(f"you may not read every indicator of rule {', '.join(hidden)}")
    if regimes is not None:
        under = {r.code for r in await rules_for_regimes(db, regimes)}
        rules = [r for r in rules if r.code in under]
    readable = [r for r in rules if all(scope.may_read(i) for i in r.indicators)]
    return readable, [r.code for r in rules if r not in readable]


async def analyse(
    db: Any, scope: Scope, rules: Sequence[Rule], skipped: list[str], periods: Sequence[str], unit_id: int
) -> Analysis:
    if len(periods) > MAX_PERIODS:
        raise BadUserInput(f"analyse at most {MAX_PERIODS} periods at once")
    indicators = sorted({i for r in rules for i in r.indicators})
    rows = await db.fetch(_SELECT_VALUES, unit_id, list(periods), indicators, scope.unit_ids) if rules else []
    # By unit id: a code names a 2025 province and the pre-2025 province it continues.
    cells: dict[tuple[str, str, int], dict[tuple[str, str], Decimal]] = defaultdict(dict)
    for r in rows:
        cells[(r["unit_code"], r["period"], r["unit_id"])][(r["indicator_code"], r["dims"])] = r["value"]
    violations = []
    for rule in rules:
        for (unit_code, period, _), values in sorted(cells.items()):
            found = breach(rule, values)
            if found is not None:
                violations.append(Violation(rule, unit_code, period, found.left, found.right))
    return Analysis(
        [r.code for r in rules], skipped, violations[:MAX_VIOLATIONS], truncated=len(violations) > MAX_VIOLATIONS
    )
