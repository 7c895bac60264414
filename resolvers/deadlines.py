"""Data cut-off windows and submission deadlines of reporting regimes (Decree 09/2019/NĐ-CP).

Default windows (article 12): monthly, from the 15th of the previous month to the 14th of the
reporting month; quarterly, from the 15th of the month before the quarter to the 14th of its last
month; half-year 15 Dec to 14 Jun; annual 15 Dec of the previous year to 14 Dec. A regime's deadline
is N days or N working days after the cut-off, or day D of the following month. Deadlines fall at
the end of the day, Vietnam time (UTC+7); a window opens at the start of its first day, Vietnam time.
A regime with expiry days locks a report that many days after its deadline (migration 0014).

A week (2026-W05) is its own window, Monday to Sunday: it opens on the Monday at 00:00 Vietnam time,
and its deadline is N days or N working days (skipping weekends and the holiday list) after the
Sunday, at the end of that day; "day D of the next month" has no meaning for a week and is refused
(resolvers/regime_admin.py, and migration 0018). So DAYS_AFTER_CUTOFF 0 is Sunday 23:59:59.999999,
and WORKING_DAYS_AFTER_CUTOFF 2 the Tuesday after, or later when a holiday falls on either day.

An ad-hoc regime (migration 0018) asks for one period by one instant: its deadline is that instant,
whatever the holidays; there is no cut-off window to wait for, so its drafts open at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.hub_time import VIETNAM
from nrhub.resolvers.periods import WEEKLY, Period

# The regime columns a schedule follows from, for the statements that read them.
RULE_COLUMNS = "cutoff_start_day, cutoff_end_day, deadline_rule, deadline_value, adhoc_period, adhoc_deadline"


@dataclass(frozen=True, slots=True)
class Rule:
    cutoff_start_day: int
    cutoff_end_day: int
    deadline_rule: str  # DAYS_AFTER_CUTOFF | WORKING_DAYS_AFTER_CUTOFF | DAY_OF_NEXT_MONTH | ONE_OFF
    deadline_value: int
    adhoc_period: str | None = None  # an ad-hoc regime's one period (ONE_OFF) ...
    adhoc_deadline: datetime | None = None  # ... and the instant it is due

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Rule:
        """The rule of a regime row holding ``RULE_COLUMNS``."""
        return cls(
            row["cutoff_start_day"],
            row["cutoff_end_day"],
            row["deadline_rule"],
            row["deadline_value"],
            row["adhoc_period"],
            row["adhoc_deadline"],
        )

    @property
    def adhoc(self) -> bool:
        return self.adhoc_deadline is not None


@dataclass(frozen=True, slots=True)
class Schedule:
    window_start: date
    window_end: date
    deadline: datetime  # the last instant a report counts as on time
    opens_at_once: bool = False  # an ad-hoc request: drafts open as soon as it exists

    @property
    def opens_at(self) -> datetime | None:
        """The first instant a draft may be opened, unless the regime takes early reports; None: at once."""
        if self.opens_at_once:
            return None
        return datetime.combine(self.window_start, time(0), tzinfo=VIETNAM)

    def on_time(self, submitted_at: datetime) -> bool:
        return submitted_at <= self.deadline


def schedule(rule: Rule, period: Period, holidays: Collection[date]) -> Schedule:
    if rule.adhoc_deadline is not None:
        if str(period) != rule.adhoc_period:
            raise BadUserInput(f"this ad-hoc request is for {rule.adhoc_period} only, not {period}")
        return Schedule(period.start, period.end, rule.adhoc_deadline, opens_at_once=True)
    if period.frequency == WEEKLY:
        window_start, window_end = period.start, period.end
    else:
        last_year, last_month = period.end_month
        window_start = _shift_month(period.start, -1).replace(day=rule.cutoff_start_day)
        window_end = date(last_year, last_month, rule.cutoff_end_day)
    if rule.deadline_rule == "DAYS_AFTER_CUTOFF":
        due = window_end + timedelta(days=rule.deadline_value)
    elif rule.deadline_rule == "WORKING_DAYS_AFTER_CUTOFF":
        due = _add_working_days(window_end, rule.deadline_value, holidays)
    elif rule.deadline_rule == "DAY_OF_NEXT_MONTH" and period.frequency != WEEKLY:
        due = _shift_month(window_end.replace(day=1), 1).replace(day=rule.deadline_value)
    else:  # refused when regimes are written (regime_admin, migration 0018): never silently guessed
        raise BadUserInput(f"a deadline rule {rule.deadline_rule} cannot give the deadline of {period}")
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
