"""Figures as exact decimals: the one rule for which numbers the hub accepts, and exact sums.

A figure is stored in a PostgreSQL ``numeric`` column, which holds up to 131,072 digits before the
decimal point and 16,383 after it. Anything outside that is refused here, on every way in, rather
than letting the driver encode it: asyncpg writes 1e131072 as 0 and fails on 1.5e-16383, so a
figure would be published as a different number from the one the audit records.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation

from nrhub.resolvers.errors import BadUserInput

MAX_INTEGER_DIGITS = 131_072
MAX_FRACTION_DIGITS = 16_383

# Additions of figures are exact: Python's default context rounds to 28 significant digits, so
# parts of 30 digits could "add up" to a total they do not add up to.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def parse_figure(text: str) -> Decimal:
    """The decimal written in ``text``, exactly as written; BadUserInput when it cannot be stored."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BadUserInput(f"{_shown(text)} is not a decimal number") from None
    return check_figure(value)


def check_figure(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise BadUserInput(f"{_shown(str(value))} is not a finite number")
    if value and value.adjusted() >= MAX_INTEGER_DIGITS:
        raise BadUserInput(f"{_shown(str(value))} has more than {MAX_INTEGER_DIGITS:,} digits before the decimal point")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent < -MAX_FRACTION_DIGITS:
        raise BadUserInput(f"{_shown(str(value))} has more than {MAX_FRACTION_DIGITS:,} digits after the decimal point")
    return value


def exact_sum(values: Sequence[Decimal]) -> Decimal:
    """PostgreSQL's numeric sum: exact, whatever the number of digits."""
    total = Decimal(0)
    for value in values:
        total = EXACT.add(total, value)
    return total


def written(value: Decimal) -> str:
    """A figure as people read it: its stored digits, never exponent form (20000, not 2E+4).

    asyncpg decodes numeric 20000 as Decimal('2E+4'); ``str`` would print that.
    """
    return format(value, "f")


def _shown(text: str) -> str:
    # A refused number can be a megabyte long; the message quotes its start.
    return repr(text if len(text) <= 40 else text[:37] + "...")
