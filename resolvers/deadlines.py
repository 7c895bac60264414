"""Data cut-off windows and submission deadlines of reporting regimes (Decree 09/2019/NĐ-CP).

Default windows (article 12): monthly, from the 15th of the previous month to the 14th of the
reporting month; quarterly, from the 15th of the month before the quarter to the 14th of its last
month; half-year 15 Dec to 14 Jun; annual 15 Dec of the previous year to 14 Dec. A regime's deadline
is N days or N working days after the cut-off, or day D of the following month. Deadlines fall at
the end of the day, Vietnam time (UTC+7); a window opens at the start of its first day, Vietnam time.
A regime with expiry days locks a report that many days after its deadline (migration 0014).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from nrhub.resolvers.hub_time import VIETNAM
from nrhub.resolvers.periods import Period


@dataclass(frozen=True, slots=True)
class Rule:
    cutoff_start_day: int
    cutoff_end_day: int
    deadline_rule: str  # DAYS_AFTER_CUTOFF | WORKING_DAYS_AFTER_CUTOFF | DAY_OF_NEXT_MONTH
    deadline_value: int


@dataclass(frozen=True, slots=True)
class Schedule:
    window_start: date
    window_end: date
    deadline: datetime  # the last instant a report counts as on time

    @property
    def opens_at(self) -> datetime:
        """The first instant a draft may be opened, unless the regime takes early reports."""
        return datetime.combine(self.window_start, time(0), tzinfo=VIETNAM)

    def on_time(self, submitted_at: datetime) -> bool:
        return submitted_at <= self.deadline


def schedule(rule: Rule, period: Period, holidays: Collection[date]) -> Schedule:
    first = period.start
    last_year, last_month = period.end_month
    window_start = _shift_month(first, -1).replace(day=rule.cutoff_start_day)
    window_end = date(last_year, last_month, rule.cutoff_end_day)
    if rule.deadline_rule == "DAYS_AFTER_CUTOFF":
        due = window_end + timedelta(days=rule.deadline_value)
    elif rule.deadline_rule == "WORKING_DAYS_AFTER_CUTOFF":
        due = _add_working_days(window_end, rule.deadline_value, holidays)
    else:  # DAY_OF_NEXT_MONTH
        due = _shift_month(date(last_year, last_month, 1), 1).replace(day=rule.deadline_value)
    deadline = datetime.combine(due, time(23, 59, 59, 999999), tzinfo=VIETNAM)
    return Schedule(window_start, window_end, deadline)


def _shift_month(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _add_working_days(start: date, count: int, holidays: Collection[date]) -> date:
    day = start
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            count -= 1
    return day
