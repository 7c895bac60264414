"""Reporting periods in SDMX notation: ``2026``, ``2026-S1``, ``2026-Q3``, ``2026-M10``, ``2026-W05``.

A week is an ISO 8601 week (Monday to Sunday) of an ISO year: 2026-W01 starts on 29 December 2025,
and only a year whose 28 December falls in week 53 has a 53rd (2020 and 2026 do, 2025 does not). Weeks
are periods of their own: a week may cross a month's end, so weeks never add up to months,
quarters or years, and those are never split into weeks.

The database checks the same grammar (``is_period``, migrations 0001 and 0018); this module parses,
orders, ranges and converts periods for the data functions.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from nrhub.resolvers.errors import BadUserInput

FREQUENCIES = ("A", "S", "Q", "M", "W")
WEEKLY = "W"
_MONTHS_PER = {"A": 12, "S": 6, "Q": 3, "M": 1}  # a week is not made of months
_PATTERN = re.compile(r"^(\d{4})(?:-(S[12]|Q[1-4]|M(?:0[1-9]|1[0-2])|W(?:0[1-9]|[1-4]\d|5[0-3])))?$")


@dataclass(frozen=True, slots=True)
class Period:
    """One period: a year, half, quarter, month or ISO week. Ordered by start, then by end."""

    year: int  # a week's ISO year
    start_month: int  # a week: 0 (weeks are not made of months)
    frequency: str
    week: int = 0  # a week: its number in the ISO year, 1..53

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise BadUserInput(
                f"{text!r} is not a period: write 2026, 2026-S1, 2026-Q3, 2026-M10 or 2026-W05 (SDMX notation)"
            )
        year, part = int(match[1]), match[2]
        if part is None:
            return cls(year, 1, "A")
        frequency, number = part[0], int(part[1:])
        if frequency == WEEKLY:
            return cls.of_week(year, number)
        return cls(year, (number - 1) * _MONTHS_PER[frequency] + 1, frequency)

    @classmethod
    def of_week(cls, iso_year: int, week: int) -> Period:
        """ISO week ``week`` of ``iso_year``; BadUserInput when that year has no such week."""
        try:
            date.fromisocalendar(iso_year, week, 1)
        except ValueError:
            weeks = date(iso_year, 12, 28).isocalendar().week if iso_year >= 1 else 0
            raise BadUserInput(f"{iso_year}-W{week:02d} is not a week: {iso_year} has {weeks} ISO weeks") from None
        return cls(iso_year, 0, WEEKLY, week)

    @classmethod
    def week_of(cls, day: date) -> Period:
        """The ISO week holding ``day``."""
        iso = day.isocalendar()
        return cls(iso.year, 0, WEEKLY, iso.week)

    @property
    def months(self) -> int:
        if self.frequency == WEEKLY:
            raise BadUserInput(f"{self} is a week: weeks are not made of months")
        return _MONTHS_PER[self.frequency]

    @property
    def start(self) -> date:
        if self.frequency == WEEKLY:
            return date.fromisocalendar(self.year, self.week, 1)
        return date(self.year, self.start_month, 1)

    @property
    def end_month(self) -> tuple[int, int]:
        """(year, month) of the period's last month (not for a week: see ``months``)."""
        return self.year, self.start_month + self.months - 1

    @property
    def end(self) -> date:
        """The period's last day (a week's Sunday)."""
        if self.frequency == WEEKLY:
            return self.start + timedelta(days=6)
        year, month = self.end_month
        return date(year, month, calendar.monthrange(year, month)[1])

    def _key(self) -> tuple[date, date]:
        return self.start, self.end  # no two periods share both

    def __lt__(self, other: Period) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Period) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Period) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Period) -> bool:
        return self._key() >= other._key()

    def __str__(self) -> str:
        if self.frequency == "A":
            return str(self.year)
        if self.frequency == WEEKLY:
            return f"{self.year}-W{self.week:02d}"
        number = (self.start_month - 1) // self.months + 1
        return (
            f"{self.year}-{self.frequency}{number:02d}"
            if self.frequency == "M"
            else (f"{self.year}-{self.frequency}{number}")
        )

    def next(self) -> Period:
        if self.frequency == WEEKLY:
            return Period.week_of(self.start + timedelta(days=7))
        month_index = self.year * 12 + self.start_month - 1 + self.months
        return Period(month_index // 12, month_index % 12 + 1, self.frequency)

    def previous(self) -> Period:
        if self.frequency == WEEKLY:
            return Period.week_of(self.start - timedelta(days=7))
        month_index = self.year * 12 + self.start_month - 1 - self.months
        return Period(month_index // 12, month_index % 12 + 1, self.frequency)

    def subperiods(self, frequency: str) -> list[Period]:
        """The periods of a finer (or the same) frequency that make up this one."""
        if WEEKLY in (frequency, self.frequency):
            if frequency == self.frequency:
                return [self]
            raise BadUserInput(f"{self} cannot be split into {frequency} periods: {_WEEKS_APART}")
        step = _MONTHS_PER[frequency]
        if step > self.months:
            raise BadUserInput(f"{self} cannot be split into {frequency} periods")
        return [
            Period(self.year, month, frequency)
            for month in range(self.start_month, self.start_month + self.months, step)
        ]


_WEEKS_APART = "a week may cross a month's end, so weeks and months, quarters or years never combine"


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
    if WEEKLY in (frequency, period.frequency):
        if frequency == period.frequency:
            return period
        raise BadUserInput(f"no {frequency} period contains {period}: {_WEEKS_APART}")
    step = _MONTHS_PER[frequency]
    if step < period.months:
        raise BadUserInput(f"{period} is longer than one {frequency} period")
    return Period(period.year, (period.start_month - 1) // step * step + 1, frequency)
