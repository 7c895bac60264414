"""Validation of a report against its regime's rules; every problem names the cell it concerns.

Errors block submission: a required cell missing, a value of the wrong type, with more decimals
than its indicator has, or out of range, parts that do not add up to their total, a breached
validation rule of importance ERROR (resolvers/rules.py). Warnings do not: a breached WARNING rule
(which needs a written explanation to submit), a jump from the previous period beyond the
regime's threshold, and a value that is an outlier against the unit's own history by the regime's
method (resolvers/outlier_bounds.py). Unusual figures happen, and the reviewer decides.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nrhub.resolvers.exact import EXACT, exact_sum, written
from nrhub.resolvers.outlier_bounds import bounds_of_cells, outlier_method
from nrhub.resolvers.outliers import Key, fetch_history, outlier
from nrhub.resolvers.periods import Period
from nrhub.resolvers.rules import breach, breach_message, rules_for_regimes

if TYPE_CHECKING:
    from nrhub.resolvers.scope import Scope
    from nrhub.resolvers.submissions import Submission


@dataclass(frozen=True, slots=True)
class Problem:
    indicator_code: str
    dims: str
    message: str
    severity: str  # ERROR or WARNING
    rule_code: str | None = None  # the validation rule breached
    indicators: tuple[str, ...] = ()  # every indicator whose figures the message quotes, when more than one


# Every form cell for the report's own unit and for each unit below it that the report holds
# cells of: a commune's cells obey the same rules as the province's own.
_SELECT_FORM = """
SELECT ri.indicator_code, ri.dims, ri.required, ri.min_value, ri.max_value, i.value_type, i.decimals, i.aggregation,
       u.id = $2 AS own, u.id AS unit_id, u.code AS unit_code, v.value, prev.value AS previous, r.jump_threshold
FROM regime_item ri
JOIN regime r ON r.code = ri.regime_code
JOIN indicator i ON i.code = ri.indicator_code
CROSS JOIN (SELECT id, code FROM admin_unit
            WHERE id = $2 OR id IN (SELECT unit_id FROM submission_value WHERE submission_id = $1)) u
LEFT JOIN submission_value v ON v.submission_id = $1 AND v.indicator_code = ri.indicator_code AND v.dims = ri.dims
      AND v.unit_id = u.id
LEFT JOIN observation_current prev ON prev.indicator_code = ri.indicator_code AND prev.unit_id = u.id
      AND prev.period = $3 AND prev.dims = ri.dims
WHERE ri.regime_code = $4
ORDER BY u.id <> $2, u.code, ri.indicator_code, ri.dims
"""


async def validate_values(conn: Any, submission: Submission, scope: Scope | None = None) -> list[Problem]:
    """Every problem of the report's current cells. Outliers are judged only for a caller whose
    grants (``scope``) are known, against the history it may read, and quote its figures; without
    one (inside the workflow's transactions, which read every row) none are: a warning computed from
    figures the caller may not read, asked for again with other values, would bracket them."""
    previous = str(Period.parse(submission.period).previous())
    rows = await conn.fetch(_SELECT_FORM, submission.id, submission.unit_id, previous, submission.regime_code)
    problems: list[Problem] = []
    cells: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)  # (where, indicator) -> dims -> value
    for r in rows:
        code, dims, value = r["indicator_code"], r["dims"], r["value"]
        where = "" if r["own"] else f"unit {r['unit_code']}: "  # a cell of a unit below names it
        if value is None:
            if r["required"] and r["own"]:
                problems.append(Problem(code, dims, "required cell is empty", "ERROR"))
            continue
        cells[(where, code)][dims] = value
        problems.extend(_cell_problems(r, where, previous))
    sum_indicators = {r["indicator_code"] for r in rows if r["aggregation"] == "SUM"}
    for (where, code), unit_cells in sorted(cells.items()):
        if code in sum_indicators:
            problems.extend(_parts_add_up(code, unit_cells, where))
    problems.extend(await _rule_problems(conn, submission, cells))
    if scope is not None:
        problems.extend(await _outliers(conn, submission, [r for r in rows if r["value"] is not None], scope))
    return problems


def _cell_problems(r: Any, where: str, previous: str) -> list[Problem]:
    code, dims, value = r["indicator_code"], r["dims"], r["value"]
    problems = []
    if r["value_type"] == "INTEGER" and value != value.to_integral_value():
        problems.append(Problem(code, dims, f"{where}{written(value)} is not a whole number", "ERROR"))
    elif -_exponent(value) > r["decimals"]:
        # The indicator's published precision (issue 19: 52345.678 was accepted for two decimals).
        places = f"{r['decimals']} decimal{'s' if r['decimals'] != 1 else ''}"
        problems.append(Problem(code, dims, f"{where}{written(value)} has more than {places}", "ERROR"))
    if r["min_value"] is not None and value < r["min_value"]:
        below = f"{where}{written(value)} is below the minimum {written(r['min_value'])}"
        problems.append(Problem(code, dims, below, "ERROR"))
    if r["max_value"] is not None and value > r["max_value"]:
        above = f"{where}{written(value)} is above the maximum {written(r['max_value'])}"
        problems.append(Problem(code, dims, above, "ERROR"))
    jump = r["jump_threshold"]
    if jump is not None and r["previous"] and abs(value - r["previous"]) / abs(r["previous"]) > jump:
        # The previous figure is not quoted: the submitter may not be allowed to read it.
        problems.append(Problem(code, dims, f"{where}changed by more than {jump:%} from {previous}", "WARNING"))
    return problems


def _exponent(value: Decimal) -> int:
    """The exponent of the value's last significant digit: 52345.670 -> -2, 1200 -> 2."""
    exponent = value.normalize(EXACT).as_tuple().exponent
    assert isinstance(exponent, int)  # figures are finite (resolvers/exact.py)
    return exponent


async def _rule_problems(
    conn: Any, submission: Submission, cells: dict[tuple[str, str], dict[str, Decimal]]
) -> list[Problem]:
    """The validation rules each unit's cells of the report breach; a rule sees the report's cells only."""
    rules = await rules_for_regimes(conn, [submission.regime_code])
    if not rules:
        return []
    units: dict[str, dict[tuple[str, str], Decimal]] = defaultdict(dict)
    for (where, code), by_dims in cells.items():
        units[where].update({(code, dims): value for dims, value in by_dims.items()})
    problems = []
    for where, unit_cells in sorted(units.items()):
        for rule in rules:
            found = breach(rule, unit_cells)
            if found is not None:
                message = breach_message(where, rule, found)
                problems.append(
                    Problem(rule.indicators[0], "", message, rule.importance, rule.code, tuple(rule.indicators))
                )
    return problems


async def _outliers(conn: Any, submission: Submission, filled: list[Any], scope: Scope) -> list[Problem]:
    """Values far from the unit's own history, by the regime's outlier method (resolvers/outlier_bounds.py):
    the modified z-score (resolvers/outliers.py), min-max bounds generated beforehand, or none."""
    method = await outlier_method(conn, submission.regime_code)
    if method == "NONE":
        return []
    keys: list[Key] = [(r["indicator_code"], r["unit_id"], r["dims"]) for r in filled]
    if method == "MIN_MAX":
        return await _outside_bounds(conn, submission, filled, keys, scope)
    history = await fetch_history(conn, keys, submission.period, scope.indicators, scope.unit_ids)
    problems = []
    for r, key in zip(filled, keys, strict=True):
        found = outlier(r["value"], history.get(key, []))
        if found is None:
            continue
        where = "" if r["own"] else f"unit {r['unit_code']}: "
        message = (
            f"{where}an outlier against the unit's last {found.periods} periods ({written(r['value'])} against "
            f"a median of {written(found.median)}, modified z-score {found.z:.1f})"
        )
        problems.append(Problem(r["indicator_code"], r["dims"], message, "WARNING"))
    return problems


async def _outside_bounds(
    conn: Any, submission: Submission, filled: list[Any], keys: list[Key], scope: Scope
) -> list[Problem]:
    """Values outside the min-max bounds stored for their cell; a cell without bounds is not judged."""
    stored = await bounds_of_cells(conn, scope, submission.regime_code, keys)
    problems = []
    for r, key in zip(filled, keys, strict=True):
        b = stored.get(key)
        value = r["value"]
        if b is None or b.min_value <= value <= b.max_value:
            continue
        where = "" if r["own"] else f"unit {r['unit_code']}: "
        side = (
            f"below the minimum {written(b.min_value)}"
            if value < b.min_value
            else f"above the maximum {written(b.max_value)}"
        )
        message = (
            f"{where}an outlier against the min-max bounds from the unit's last {b.history_size} periods "
            f"({written(value)} is {side}; bounds {written(b.min_value)} to {written(b.max_value)}, "
            f"mean ± {written(b.k)} standard deviations)"
        )
        problems.append(Problem(r["indicator_code"], r["dims"], message, "WARNING"))
    return problems


def _parts_add_up(code: str, cells: dict[str, Decimal], where: str) -> list[Problem]:
    """For each dimension whose every one-dimension part is present, the parts sum to the total."""
    total = cells.get("")
    if total is None:
        return []
    by_dimension: dict[str, list[Decimal]] = defaultdict(list)
    for dims, value in cells.items():
        if dims and "|" not in dims:
            by_dimension[dims.split("=")[0]].append(value)
    sums = {dimension: exact_sum(parts) for dimension, parts in by_dimension.items() if len(parts) > 1}
    return [
        Problem(code, "", f"{where}the {dimension} parts add up to {written(parts)}, not {written(total)}", "ERROR")
        for dimension, parts in sorted(sums.items())
        if parts != total
    ]
