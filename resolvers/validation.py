"""Validation of a report against its regime's rules; every problem names the cell it concerns.

Errors block submission: a required cell missing, a value of the wrong type or out of range,
parts that do not add up to their total. A jump from the previous period beyond the regime's
threshold is a warning: unusual figures happen, and the reviewer decides.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from resolvers.periods import Period

if TYPE_CHECKING:
    from resolvers.submissions import Submission


@dataclass(frozen=True, slots=True)
class Problem:
    indicator_code: str
    dims: str
    message: str
    severity: str  # ERROR or WARNING


_SELECT_FORM = """
SELECT ri.indicator_code, ri.dims, ri.required, ri.min_value, ri.max_value, i.value_type, i.aggregation,
       v.value, prev.value AS previous, r.jump_threshold
FROM regime_item ri
JOIN regime r ON r.code = ri.regime_code
JOIN indicator i ON i.code = ri.indicator_code
LEFT JOIN submission_value v ON v.submission_id = $1 AND v.indicator_code = ri.indicator_code AND v.dims = ri.dims
      AND v.unit_id = $2
LEFT JOIN observation_current prev ON prev.indicator_code = ri.indicator_code AND prev.unit_id = $2
      AND prev.period = $3 AND prev.dims = ri.dims
WHERE ri.regime_code = $4
ORDER BY ri.indicator_code, ri.dims
"""


async def validate_values(conn: Any, submission: Submission) -> list[Problem]:
    previous = str(Period.parse(submission.period).previous())
    rows = await conn.fetch(_SELECT_FORM, submission.id, submission.unit_id, previous, submission.regime_code)
    problems: list[Problem] = []
    cells: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for r in rows:
        code, dims, value = r["indicator_code"], r["dims"], r["value"]
        if value is None:
            if r["required"]:
                problems.append(Problem(code, dims, "required cell is empty", "ERROR"))
            continue
        cells[code][dims] = value
        if r["value_type"] == "INTEGER" and value != value.to_integral_value():
            problems.append(Problem(code, dims, f"{value} is not a whole number", "ERROR"))
        if r["min_value"] is not None and value < r["min_value"]:
            problems.append(Problem(code, dims, f"{value} is below the minimum {r['min_value']}", "ERROR"))
        if r["max_value"] is not None and value > r["max_value"]:
            problems.append(Problem(code, dims, f"{value} is above the maximum {r['max_value']}", "ERROR"))
        jump = r["jump_threshold"]
        if jump is not None and r["previous"] and abs(value - r["previous"]) / abs(r["previous"]) > jump:
            problems.append(
                Problem(
                    code, dims, f"changed by more than {jump:%} from {previous} ({r['previous']} -> {value})", "WARNING"
                )
            )
    sum_indicators = {r["indicator_code"] for r in rows if r["aggregation"] == "SUM"}
    for code in sorted(sum_indicators):
        problems.extend(_parts_add_up(code, cells.get(code, {})))
    return problems


def _parts_add_up(code: str, cells: dict[str, Decimal]) -> list[Problem]:
    """For each dimension whose every one-dimension part is present, the parts sum to the total."""
    total = cells.get("")
    if total is None:
        return []
    by_dimension: dict[str, list[Decimal]] = defaultdict(list)
    for dims, value in cells.items():
        if dims and "|" not in dims:
            by_dimension[dims.split("=")[0]].append(value)
    return [
        Problem(code, "", f"the {dimension} parts add up to {sum(parts)}, not to the total {total}", "ERROR")
        for dimension, parts in sorted(by_dimension.items())
        if len(parts) > 1 and sum(parts) != total
    ]
