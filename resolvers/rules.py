"""Validation rules (after DHIS2's): defined by admins, checked on every report and over stored data.

One function defines a rule for the GraphQL mutation and ``nrhub rules import``: its sides are
parsed (resolvers/rule_expressions.py), every cell they name is checked against the catalogue,
and the rule is written whole, with its regimes, and audited. resolvers/validation.py checks a report's
cells with ``breach``; resolvers/rule_analysis.py checks current observations.

A breached WARNING rule needs a written explanation to submit (``settle_explanations``), kept with
the submitted version for its reviewers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg

from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput, Forbidden, NotFound
from nrhub.resolvers.exact import written
from nrhub.resolvers.rule_expressions import (
    MISSING_VALUE_STRATEGIES,
    OPERATORS,
    Cell,
    cells,
    parse_side,
    printed,
    value_of,
)

if TYPE_CHECKING:
    from nrhub.resolvers.scope import Scope
    from nrhub.resolvers.submissions import Submission
    from nrhub.resolvers.validation import Problem

IMPORTANCES = ("ERROR", "WARNING")


@dataclass(frozen=True, slots=True)
class RuleSpec:
    code: str
    name_vi: str
    name_en: str
    left_side: str
    operator: str
    right_side: str
    importance: str
    missing_value: str = "SKIP_IF_ANY_VALUE_MISSING"
    regimes: list[str] = field(default_factory=list)  # none: every regime whose form holds one of its indicators
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name_vi: str
    name_en: str
    left_side: str
    operator: str
    right_side: str
    importance: str
    missing_value: str
    indicators: list[str]
    regimes: list[str]

    @property
    def text(self) -> str:
        return f"{self.left_side} {self.operator} {self.right_side}"


@dataclass(frozen=True, slots=True)
class Breach:
    left: Decimal
    right: Decimal


_COLUMNS = """r.code, r.name_vi, r.name_en, r.left_side, r.operator, r.right_side, r.importance, r.missing_value,
    r.indicators, array(SELECT regime_code FROM validation_rule_regime x WHERE x.rule_code = r.code ORDER BY 1)
    AS regimes"""
_SELECT_RULES = f"SELECT {_COLUMNS} FROM validation_rule r WHERE $1::text[] IS NULL OR r.code = ANY($1) ORDER BY r.code"
# The rules checked under any of the regimes $1: those naming one, and those naming none whose
# indicators meet the regime's form.
_SELECT_FOR_REGIMES = f"""
SELECT {_COLUMNS} FROM validation_rule r
WHERE EXISTS (SELECT 1 FROM validation_rule_regime x WHERE x.rule_code = r.code AND x.regime_code = ANY($1::text[]))
   OR (NOT EXISTS (SELECT 1 FROM validation_rule_regime x WHERE x.rule_code = r.code)
       AND r.indicators && array(SELECT indicator_code FROM regime_item WHERE regime_code = ANY($1::text[])))
ORDER BY r.code
"""
_UPSERT = """
INSERT INTO validation_rule (code, name_vi, name_en, left_side, operator, right_side, importance, missing_value,
                             indicators)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (code) DO UPDATE SET name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en,
    left_side = EXCLUDED.left_side, operator = EXCLUDED.operator, right_side = EXCLUDED.right_side,
    importance = EXCLUDED.importance, missing_value = EXCLUDED.missing_value, indicators = EXCLUDED.indicators
"""
# The named indicators with their dimensions, and the values of the named dimensions.
_SELECT_CATALOGUE = """
SELECT i.code, array(SELECT dimension_code FROM indicator_dimension d WHERE d.indicator_code = i.code) AS dimensions
FROM indicator i WHERE i.code = ANY($1::text[])
"""
_SELECT_DIMENSION_VALUES = "SELECT dimension_code, code FROM dimension_value WHERE dimension_code = ANY($1::text[])"


async def list_rules(db: Any, codes: Sequence[str] | None = None) -> list[Rule]:
    return [Rule(**r) for r in await db.fetch(_SELECT_RULES, None if codes is None else list(codes))]


async def rules_for_regimes(db: Any, regimes: Sequence[str]) -> list[Rule]:
    return [Rule(**r) for r in await db.fetch(_SELECT_FOR_REGIMES, list(regimes))]


async def upsert_rule(conn: asyncpg.Connection, actor: Actor, spec: RuleSpec, *, now: datetime) -> str:
    """Create or replace a rule; BadUserInput names what is wrong with it, nothing is written then."""
    left, right, indicators = await _checked(conn, spec)
    before = await _state(conn, spec.code)
    try:
        await conn.execute(
            _UPSERT,
            spec.code,
            spec.name_vi,
            spec.name_en,
            left,
            spec.operator,
            right,
            spec.importance,
            spec.missing_value,
            indicators,
        )
        await conn.execute("DELETE FROM validation_rule_regime WHERE rule_code = $1", spec.code)
        await conn.executemany(
            "INSERT INTO validation_rule_regime (rule_code, regime_code) VALUES ($1, $2)",
            [(spec.code, r) for r in sorted(set(spec.regimes))],
        )
    except asyncpg.ForeignKeyViolationError:
        raise BadUserInput(f"rule {spec.code} names a regime that does not exist: {sorted(spec.regimes)}") from None
    except asyncpg.CheckViolationError as exc:
        raise BadUserInput(f"rule {spec.code} breaks a rule: {exc.constraint_name}") from None
    after = await _state(conn, spec.code)
    if before == after:
        return "unchanged"
    action = "rule.update" if before else "rule.create"
    await append_entry(conn, actor, action, f"validation_rule:{spec.code}", before=before, after=after, at=now)
    return action


async def delete_rule(conn: asyncpg.Connection, actor: Actor, code: str, *, now: datetime) -> None:
    """Delete a rule; explanations given for it stay with the reports they were submitted with."""
    before = await _state(conn, code)
    if before is None:
        raise NotFound(f"there is no validation rule {code}")
    await conn.execute("DELETE FROM validation_rule WHERE code = $1", code)
    await append_entry(conn, actor, "rule.delete", f"validation_rule:{code}", before=before, at=now)


async def _state(conn: asyncpg.Connection, code: str) -> dict[str, Any] | None:
    rules = await list_rules(conn, [code])
    if not rules:
        return None
    rule = rules[0]
    return {k: getattr(rule, k) for k in rule.__dataclass_fields__}


async def _checked(conn: asyncpg.Connection, spec: RuleSpec) -> tuple[str, str, list[str]]:
    """The sides as stored, and the indicators they name; every cell checked against the catalogue."""
    where = f"rule {spec.code}"
    if spec.extra:
        raise BadUserInput(f"{where}: unknown keys {sorted(spec.extra)}")
    if spec.operator not in OPERATORS:
        raise BadUserInput(f"{where}: the operator must be one of {' '.join(OPERATORS)}")
    if spec.importance not in IMPORTANCES:
        raise BadUserInput(f"{where}: the importance must be ERROR or WARNING")
    if spec.missing_value not in MISSING_VALUE_STRATEGIES:
        raise BadUserInput(f"{where}: the missing value strategy must be one of {', '.join(MISSING_VALUE_STRATEGIES)}")
    try:
        left, right = parse_side(spec.left_side), parse_side(spec.right_side)
    except BadUserInput as exc:
        raise BadUserInput(f"{where}: {exc.message}") from None
    named = cells(left) + [c for c in cells(right) if c not in cells(left)]
    if not named:
        raise BadUserInput(f"{where}: it names no indicator, so it says nothing about any report")
    indicators = list(dict.fromkeys(c.indicator for c in named))
    catalogue = {r["code"]: set(r["dimensions"]) for r in await conn.fetch(_SELECT_CATALOGUE, indicators)}
    unknown = [code for code in indicators if code not in catalogue]
    if unknown:
        raise BadUserInput(f"{where}: there is no indicator {', '.join(unknown)}")
    dimensions = sorted({p.split("=")[0] for c in named for p in c.dims.split("|") if p})
    values = {(r["dimension_code"], r["code"]) for r in await conn.fetch(_SELECT_DIMENSION_VALUES, dimensions)}
    for cell in named:
        for part in filter(None, cell.dims.split("|")):
            dimension, value = part.split("=")
            if dimension not in catalogue[cell.indicator]:
                raise BadUserInput(f"{where}: {cell.indicator} is not disaggregated by {dimension}")
            if (dimension, value) not in values:
                raise BadUserInput(f"{where}: {dimension} has no value {value}")
    return printed(left), printed(right), indicators


def breach(rule: Rule, lookup: Mapping[tuple[str, str], Decimal]) -> Breach | None:
    """The two sides' values when ``rule`` fails on these cells; None when it holds or is skipped."""

    def find(cell: Cell) -> Decimal | None:
        return lookup.get((cell.indicator, cell.dims))

    left = value_of(parse_side(rule.left_side), find, rule.missing_value)
    right = value_of(parse_side(rule.right_side), find, rule.missing_value)
    if left is None or right is None or OPERATORS[rule.operator](left, right):
        return None
    return Breach(left, right)


def breach_message(where: str, rule: Rule, found: Breach) -> str:
    explain = "; explain it to submit" if rule.importance == "WARNING" else ""
    return (
        f"{where}{rule.code} ({rule.name_en}): {rule.text} fails with "
        f"{written(found.left)} {rule.operator} {written(found.right)}{explain}"
    )


# --- Explanations of breached WARNING rules -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Explanation:
    rule_code: str
    explanation: str
    indicators: list[str]  # of the rule when it still exists: who may read the explanation besides the reporter


_INSERT_EXPLANATIONS = """
INSERT INTO submission_explanation (submission_id, rule_code, explanation)
SELECT $1, code, text FROM unnest($2::text[], $3::text[]) AS e(code, text)
"""
_SELECT_EXPLANATIONS = """
SELECT e.rule_code, e.explanation, coalesce(r.indicators, '{}') AS indicators
FROM submission_explanation e LEFT JOIN validation_rule r ON r.code = e.rule_code
WHERE e.submission_id = $1 ORDER BY e.rule_code
"""
MAX_EXPLANATION = 4000


async def store_explanations(
    conn: asyncpg.Connection, actor: Actor, submission_id: int, explanations: Mapping[str, str]
) -> None:
    """Keep explanations for the draft about to be submitted (its own agency's, in the same transaction)."""
    if not explanations:
        return
    # Locked as submitting locks it: a concurrent submit of the same draft waits here, then finds it submitted.
    row = await conn.fetchrow("SELECT agency_code, status FROM submission WHERE id = $1 FOR UPDATE", submission_id)
    if row is None:
        raise NotFound(f"there is no submission {submission_id}")
    if row["agency_code"] != actor.agency:
        raise Forbidden("you may act only for your own agency's reports")
    for code, text in explanations.items():
        if not text.strip():
            raise BadUserInput(f"the explanation of {code} is empty")
        if len(text) > MAX_EXPLANATION:
            raise BadUserInput(f"the explanation of {code} is longer than {MAX_EXPLANATION} characters")
    if row["status"] != "DRAFT":
        return  # submitting it fails with its own CONFLICT; nothing is stored
    codes = sorted(explanations)
    await conn.execute(_INSERT_EXPLANATIONS, submission_id, codes, [explanations[c] for c in codes])


async def settle_explanations(
    conn: asyncpg.Connection, draft: Submission, problems: Sequence[Problem]
) -> dict[str, str]:
    """The explanations a draft is submitted with; BadUserInput unless each breached WARNING rule has one.

    A correction (correctValue) carries its reason, which stands as the explanation of every warning.
    """
    warned = {p.rule_code for p in problems if p.rule_code and p.severity == "WARNING"}
    given = {r["rule_code"]: r["explanation"] for r in await conn.fetch(_SELECT_EXPLANATIONS, draft.id)}
    extra = sorted(set(given) - warned)
    if extra:
        raise BadUserInput(f"the report breaches no warning rule {', '.join(extra)}; explain only those it breaches")
    unexplained = sorted(warned - set(given))
    if unexplained and draft.correction_reason:
        reasons = {code: draft.correction_reason for code in unexplained}
        await conn.execute(_INSERT_EXPLANATIONS, draft.id, unexplained, [reasons[c] for c in unexplained])
        given |= reasons
    elif unexplained:
        raise BadUserInput(
            f"the report breaches the warning rule(s) {', '.join(unexplained)}: explain each "
            "(explanations: [{rule, explanation}]) to submit it"
        )
    return dict(sorted(given.items()))


async def list_explanations(db: Any, submission_id: int) -> list[Explanation]:
    return [Explanation(**r) for r in await db.fetch(_SELECT_EXPLANATIONS, submission_id)]


def readable_explanations(
    explanations: Sequence[Explanation], *, every: bool, scope: Scope, unit_id: int
) -> list[Explanation]:
    """Those a caller may read: all for the report's own agency; for anyone else, as the rule's
    problem is shown (resolvers/reports.py, readable_problems): the report's unit covered and every
    indicator of the rule readable. The explanation of a deleted rule stays with its reporter."""
    if every:
        return list(explanations)
    if not scope.covers_unit(unit_id):
        return []
    return [e for e in explanations if e.indicators and all(scope.may_read(i) for i in e.indicators)]
