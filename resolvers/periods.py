"""Reporting periods in SDMX notation: ``2026``, ``2026-S1``, ``2026-Q3``, ``2026-M10``.

The database checks the same grammar (``is_period`` in migration 0001); this module parses,
orders, ranges and converts periods for the data functions.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from nrhub.resolvers.errors import BadUserInput

FREQUENCIES = ("A", "S", "Q", "M")
_MONTHS_PER = {"A": 12, "S": 6, "Q": 3, "M": 1}
_PATTERN = re.compile(r"^(\d{4})(?:-(S[12]|Q[1-4]|M(?:0[1-9]|1[0-2])))?$")


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One period: a year, half, quarter or month. Ordered by start, then by length."""

    year: int
    start_month: int
    frequency: str

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise BadUserInput(f"{text!r} is not a period: write 2026, 2026-S1, 2026-Q3 or 2026-M10 (SDMX notation)")
        year, part = int(match[1]), match[2]
        if part is None:
            return cls(year, 1, "A")
        frequency, number = part[0], int(part[1:])
        return cls(year, (number - 1) * _MONTHS_PER[frequency] + 1, frequency)

    @property
    def months(self) -> int:
        return _MONTHS_PER[self.frequency]

    @property
    def start(self) -> date:
        return date(self.year, self.start_month, 1)

    @property
    def end_month(self) -> tuple[int, int]:
        """(year, month) of the period's last month."""
        return self.year, self.start_month + self.months - 1

    @property
    def end(self) -> date:
        """The period's last day."""
        year, month = self.end_month
        return date(year, month, calendar.monthrange(year, month)[1])

    def __str__(self) -> str:
        if self.frequency == "A":
            return str(self.year)
        number = (self.start_month - 1) // self.months + 1
        return (
            f"{self.year}-{self.frequency}{number:02d}"
            if self.frequency == "M"
            else (f"{self.year}-{self.frequency}{number}")
        )

    def next(self) -> Period:
        month_index = self.year * 12 + self.start_month - 1 + self.months
        return Period(month_index // 12, month_index % 12 + 1, self.frequency)

    def previous(self) -> Period:
        month_index = self.year * 12 + self.start_month - 1 - self.months
        return Period(month_index // 12, month_index % 12 + 1, self.frequency)

    def subperiods(self, frequency: str) -> list[Period]:
        """The periods of a finer (or the same) frequency that make up this one."""
        step = _MONTHS_PER[frequency]
        if step > self.months:
            raise BadUserInput(f"{self} cannot be split into {frequency} periods")
        return [
            Period(self.year, month, frequency)
            for month in range(self.start_month, self.start_month + self.months, step)
        ]


def period_range(first: Period, last: Period) -> list[Period]:
    """Every period from ``first`` to ``last`` inclusive; both must share a frequency."""
    if first.frequency != last.frequency:
        raise BadUserInput(f"a period range needs one frequency, got {first} and {last}")
    if last < first:
        raise BadUserInput(f"the range ends ({last}) before it starts ({first})")
    periods = [first]
    while periods[-1] != last:
        periods.append(periods[-1].next())
    return periods


def containing(period: Period, frequency: str) -> Period:
    """The period of a coarser frequency that contains ``period``."""
    step = _MONTHS_PER[frequency]
    if step < period.months:
        raise BadUserInput(f"{period} is longer than one {frequency} period")
    return Period(period.year, (period.start_month - 1) // step * step + 1, frequency)
