"""Reading a source's answer into values, refusing anything that is not exactly what was asked.

A value must be a JSON number (or a PostgreSQL numeric), finite; a period must be SDMX; a
disaggregation key must follow the hub's grammar; a status must be one of the hub's. Strings that
look like numbers, booleans, NaN and duplicated keys are refused rather than coerced: a figure the
hub cannot vouch for is not shown as one. Rows for units or periods that were not asked for are
dropped, so an upstream that answers more than it was asked never widens what a caller sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.observations import STATUSES
from nrhub.resolvers.periods import Period
from nrhub.resolvers.sources.config import FieldMapping
from nrhub.resolvers.sources.failures import SourceMalformed

# The same grammar as is_dims_key in migration 0002.
_DIMS = re.compile(r"^([A-Z][A-Z_]*=[A-Z0-9]+(\|[A-Z][A-Z_]*=[A-Z0-9]+)*)?$")


@dataclass(frozen=True, slots=True)
class Question:
    """One upstream call: these indicators, for every unit and period named (a cross product)."""

    indicators: tuple[str, ...]
    units: tuple[str, ...]
    periods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceValue:
    indicator: str
    unit: str
    period: str
    dims: str
    value: Decimal
    status: str


def _refuse_constant(name: str) -> Any:
    raise SourceMalformed(f"{name} is not a finite number")


def parse_json(body: bytes | str) -> Any:
    """JSON with every non-integer number as an exact Decimal; NaN and Infinity refused."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SourceMalformed(f"the answer is not JSON: {exc}") from None


def rows_at(payload: Any, path: Sequence[str]) -> list[Any]:
    """The list of rows at ``path`` inside the answer."""
    node = payload
    for step in path:
        if not isinstance(node, dict) or step not in node:
            raise SourceMalformed(f"the answer has no {'.'.join(path)}")
        node = node[step]
    if not isinstance(node, list):
        raise SourceMalformed(f"{'.'.join(path) or 'the answer'} is not a list")
    return node


def read_rows(
    rows: Sequence[Any],
    mapping: FieldMapping,
    question: Question,
    *,
    names: Mapping[str, str],
    default_status: str,
) -> list[SourceValue]:
    """Validated values for what ``question`` asked; ``names`` maps upstream indicator names to codes."""
    units, periods = set(question.units), set(question.periods)
    seen: set[tuple[str, str, str, str]] = set()
    values = []
    for row in rows:
        if not isinstance(row, dict):
            raise SourceMalformed("a row is not an object")
        indicator = _indicator(row, mapping, question, names)
        unit, period = _text(row, mapping.unit), _period(row, mapping.period)
        if indicator is None or unit not in units or period not in periods:
            continue
        value = read_value(row.get(mapping.value))
        if value is None:
            continue  # null: the upstream has no value for this key
        dims = _dims(row.get(mapping.dims) if mapping.dims else None)
        key = (indicator, unit, period, dims)
        if key in seen:
            raise SourceMalformed(f"two values for {indicator} {unit} {period} {dims!r}")
        seen.add(key)
        status = _status(row.get(mapping.status) if mapping.status else None, default_status)
        values.append(SourceValue(indicator, unit, period, dims, value, status))
    return values


def read_value(raw: Any) -> Decimal | None:
    """A finite exact number, or None for null; anything else is malformed."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
        raise SourceMalformed(f"a value of type {type(raw).__name__} is not a number")
    value = Decimal(raw)
    if not value.is_finite():
        raise SourceMalformed("a value is not finite")
    return value


def _indicator(row: dict, mapping: FieldMapping, question: Question, names: Mapping[str, str]) -> str | None:
    if mapping.indicator is None:
        return question.indicators[0]
    code = names.get(_text(row, mapping.indicator))
    return code if code in question.indicators else None


def _text(row: dict, field: str) -> str:
    value = row.get(field)
    if not isinstance(value, str):
        raise SourceMalformed(f"field {field} is not a string")
    return value


def _period(row: dict, field: str) -> str:
    text = _text(row, field)
    try:
        return str(Period.parse(text))
    except BadUserInput:
        raise SourceMalformed(f"{text[:40]!r} is not an SDMX period") from None


def _dims(raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or not _DIMS.match(raw):
        raise SourceMalformed("a disaggregation key is malformed")
    return raw


def _status(raw: Any, default: str) -> str:
    if raw is None:
        return default
    if raw not in STATUSES:
        raise SourceMalformed("a status is not ESTIMATE, PRELIMINARY or OFFICIAL")
    return str(raw)
