"""Custom scalars: SDMX periods, exact decimals, and opaque pre-encoded data blocks."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NewType

import orjson
import strawberry

from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.exact import parse_figure, written
from nrhub.resolvers.hub_time import given, shown
from nrhub.resolvers.periods import Period as PeriodValue


def _parse_period(value: Any) -> str:
    return str(PeriodValue.parse(value))


def _parse_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadUserInput('a decimal is written as a string or a number, e.g. "1234.56"')
    return parse_figure(str(value))


def _parse_instant(value: Any) -> datetime:
    try:
        return given(value) if isinstance(value, str) else given("")
    except ValueError as exc:
        raise BadUserInput(f"a DateTime is ISO 8601 with an offset, e.g. 2026-12-20T23:59:59+07:00 ({exc})") from None


def _refuse_block(value: Any) -> str:
    raise BadUserInput("DataBlock is an output type")


Period = NewType("Period", str)
DecimalValue = NewType("DecimalValue", Decimal)
DataBlock = NewType("DataBlock", str)

SCALAR_MAP = {
    datetime: strawberry.scalar(
        name="DateTime",
        description="An instant in ISO 8601 with an offset. The hub writes Vietnam time "
        "(2026-11-17T23:59:59.999999+07:00); it reads any offset, and refuses an instant without one.",
        serialize=shown,
        parse_value=_parse_instant,
    ),
    Period: strawberry.scalar(
        name="Period",
        description="A reporting period in SDMX notation: 2026 (year), 2026-S1 (half), 2026-Q3 "
        "(quarter), 2026-M10 (month) or 2026-W05 (ISO 8601 week, Monday to Sunday; W53 only in a year "
        "that has it). Anything else is refused with BAD_USER_INPUT.",
        serialize=str,
        parse_value=_parse_period,
    ),
    # Values are written as JSON numbers with exactly the stored digits (no binary floating point
    # on the way out); use a decimal-aware JSON parser if you need more than double precision.
    DecimalValue: strawberry.scalar(
        name="Decimal",
        description="An exact decimal number, written as a JSON number with its stored digits. "
        'As input, a string ("1234.56") or a number.',
        serialize=lambda d: orjson.Fragment(written(d).encode()),
        parse_value=_parse_decimal,
    ),
    DataBlock: strawberry.scalar(
        name="DataBlock",
        description="A compact JSON block of values whose shape is documented on the field that "
        "returns it; numbers keep their exact stored digits. Used on bulk paths, where walking each "
        "value through GraphQL would cost microseconds per value.",
        serialize=lambda text: orjson.Fragment(text.encode()),
        parse_value=_refuse_block,
    ),
}
