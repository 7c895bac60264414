"""Creating and changing reporting regimes (admin), and the holiday list deadlines skip.

One function serves the GraphQL mutation and ``nrhub regimes import``: a regime is written whole
(its reporters and form replaced), inside the caller's transaction, with an audit entry holding
its state before and after.

A draft's deadline follows its regime's rule and the holiday list, as the ``timeliness`` query
computes it: when either changes, every draft's deadline is recomputed in the same transaction,
each move audited. A submitted report keeps the deadline it was judged against.

Weekly regimes (frequency W) count their deadline from the week's Sunday (resolvers/deadlines.py).
An ad-hoc regime is written with frequency ADHOC, the one ``period`` it asks for and its one-off
``deadline`` (an instant with its offset); it is stored with the frequency of that period and the
deadline rule ONE_OFF (migration 0018 says why), and reads back that way, so writing back what was
read (that frequency, rule ONE_OFF, the period and deadline) is accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from nrhub.resolvers.approval_levels import Level, check_levels, replace_levels
from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.deadlines import Rule, schedule
from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.periods import WEEKLY, Period

FREQUENCIES = {"M": "monthly", "Q": "quarterly", "S": "half-yearly", "A": "annual", "W": "weekly"}
ADHOC = "ADHOC"  # the frequency an ad-hoc regime is written with; stored as its period's
DEADLINE_RULES = {"DAYS_AFTER_CUTOFF", "WORKING_DAYS_AFTER_CUTOFF", "DAY_OF_NEXT_MONTH"}
ONE_OFF = "ONE_OFF"  # an ad-hoc regime's rule: the deadline is its adhoc_deadline
_DEFAULT_WINDOW = (15, 14)  # Decree 09/2019 default windows: 15th to 14th


@dataclass(frozen=True, slots=True)
class ItemSpec:
    indicator: str
    disaggregation: str = ""
    required: bool = True
    min_value: Decimal | None = None
    max_value: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RegimeSpec:
    code: str
    name_vi: str
    name_en: str
    legal_basis: str
    issuing_agency: str
    receiving_agency: str
    frequency: str  # M, Q, S, A, W, or ADHOC for a one-off request
    deadline_rule: str | None  # required of a recurring regime; None (or ONE_OFF) for an ad-hoc one
    deadline_value: int | None
    reporters: list[str]  # agency codes, or ["PROVINCES"] for every provincial committee
    items: list[ItemSpec]
    cutoff_start_day: int = _DEFAULT_WINDOW[0]  # a week's window is the week, an ad-hoc one has none
    cutoff_end_day: int = _DEFAULT_WINDOW[1]
    observation_status: str = "OFFICIAL"
    jump_threshold: Decimal | None = None
    allow_early: bool = False  # drafts before the period's cut-off window opens
    expiry_days: int | None = None  # a report locks this many days after its deadline; None: never
    period: str | None = None  # an ad-hoc regime's one period ...
    deadline: datetime | None = None  # ... and the instant it is due, with its offset
    levels: list[Level] = field(default_factory=list)  # the approval chain; none: the receiving agency decides
    publish_level: int | None = None  # the level whose approval publishes the values; None: the last
    consolidates: str | None = None  # the regime whose reports of the units below a report is filled from
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Stored:
    """What a spec's schedule is stored as (migration 0018)."""

    frequency: str
    deadline_rule: str
    deadline_value: int
    adhoc_period: str | None
    adhoc_deadline: datetime | None


_UPSERT = """
INSERT INTO regime (code, name_vi, name_en, legal_basis, issuing_agency, receiving_agency, frequency,
                    cutoff_start_day, cutoff_end_day, deadline_rule, deadline_value, observation_status, jump_threshold,
                    allow_early, expiry_days, adhoc_period, adhoc_deadline, publish_level, consolidates)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (code) DO UPDATE SET name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en,
    legal_basis = EXCLUDED.legal_basis, issuing_agency = EXCLUDED.issuing_agency,
    receiving_agency = EXCLUDED.receiving_agency, frequency = EXCLUDED.frequency,
    cutoff_start_day = EXCLUDED.cutoff_start_day, cutoff_end_day = EXCLUDED.cutoff_end_day,
    deadline_rule = EXCLUDED.deadline_rule, deadline_value = EXCLUDED.deadline_value,
    observation_status = EXCLUDED.observation_status, jump_threshold = EXCLUDED.jump_threshold,
    allow_early = EXCLUDED.allow_early, expiry_days = EXCLUDED.expiry_days,
    adhoc_period = EXCLUDED.adhoc_period, adhoc_deadline = EXCLUDED.adhoc_deadline,
    publish_level = EXCLUDED.publish_level, consolidates = EXCLUDED.consolidates
"""


async def regime_state(conn: asyncpg.Connection, code: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM regime WHERE code = $1", code)
    if row is None:
        return None
    reporters = [
        r["agency_code"]
        for r in await conn.fetch("SELECT agency_code FROM regime_reporter WHERE regime_code = $1 ORDER BY 1", code)
    ]
    items = [
        dict(r)
        for r in await conn.fetch(
            "SELECT indicator_code, dims, required, min_value, max_value FROM regime_item WHERE regime_code = $1"
            " ORDER BY indicator_code, dims",
            code,
        )
    ]
    levels = [
        dict(r) for r in await conn.fetch("SELECT * FROM regime_level WHERE regime_code = $1 ORDER BY level", code)
    ]
    return {**dict(row), "reporters": reporters, "items": items, "levels": levels}


async def upsert_regime(conn: asyncpg.Connection, actor: Actor, spec: RegimeSpec, *, now: datetime) -> str:
    """Create or replace a regime; database constraints and these checks refuse bad input."""
    stored = _checked(spec)
    await _check_periodicity(conn, spec, stored.frequency)
    check_levels(spec.levels, spec.publish_level)
    await _check_consolidates(conn, spec)
    before = await regime_state(conn, spec.code)
    reporters = spec.reporters
    if reporters == ["PROVINCES"]:
        reporters = [
            r["code"]
            for r in await conn.fetch(
                "SELECT code FROM agency WHERE kind = 'PROVINCIAL_COMMITTEE' AND valid_to IS NULL ORDER BY code"
            )
        ]
    try:
        await conn.execute(
            _UPSERT,
            spec.code,
            spec.name_vi,
            spec.name_en,
            spec.legal_basis,
            spec.issuing_agency,
            spec.receiving_agency,
            stored.frequency,
            spec.cutoff_start_day,
            spec.cutoff_end_day,
            stored.deadline_rule,
            stored.deadline_value,
            spec.observation_status,
            spec.jump_threshold,
            spec.allow_early,
            spec.expiry_days,
            stored.adhoc_period,
            stored.adhoc_deadline,
            spec.publish_level,
            spec.consolidates,
        )
        await conn.execute("DELETE FROM regime_reporter WHERE regime_code = $1", spec.code)
        await conn.executemany(
            "INSERT INTO regime_reporter (regime_code, agency_code) VALUES ($1, $2)",
            [(spec.code, a) for a in reporters],
        )
        await conn.execute("DELETE FROM regime_item WHERE regime_code = $1", spec.code)
        await conn.executemany(
            "INSERT INTO regime_item (regime_code, indicator_code, dims, required, min_value, max_value)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [(spec.code, i.indicator, i.disaggregation, i.required, i.min_value, i.max_value) for i in spec.items],
        )
        await replace_levels(conn, spec.code, spec.levels)
    except asyncpg.ForeignKeyViolationError as exc:
        raise BadUserInput(f"regime {spec.code} names something that does not exist: {exc.detail}") from None
    except (asyncpg.CheckViolationError, asyncpg.UniqueViolationError) as exc:
        raise BadUserInput(f"regime {spec.code} breaks a rule: {exc.constraint_name}") from None
    after = await regime_state(conn, spec.code)
    if before == after:
        return "unchanged"
    action = "regime.update" if before else "regime.create"
    await append_entry(conn, actor, action, f"regime:{spec.code}", before=before, after=after, at=now)
    if before and after and any(before[k] != after[k] for k in _RULE_COLUMNS):
        await reschedule_drafts(conn, actor, now=now, regime=spec.code)
    return action


async def _check_consolidates(conn: asyncpg.Connection, spec: RegimeSpec) -> None:
    if spec.consolidates is None:
        return
    if spec.consolidates == spec.code:
        raise BadUserInput(f"regime {spec.code} cannot consolidate its own reports")
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM regime WHERE code = $1)", spec.consolidates):
        raise BadUserInput(f"there is no regime {spec.consolidates} to consolidate")


_RULE_COLUMNS = (
    "cutoff_start_day",
    "cutoff_end_day",
    "deadline_rule",
    "deadline_value",
    "adhoc_period",
    "adhoc_deadline",
)


@dataclass(frozen=True, slots=True)
class HolidayChange:
    before: int  # days in the stored list before the change
    after: int
    drafts: int  # drafts whose deadline moved


async def replace_holidays(
    conn: asyncpg.Connection, actor: Actor, holidays: dict[date, str], *, now: datetime
) -> HolidayChange:
    """Make ``holidays`` the whole stored list: a day not in it is no longer a holiday."""
    before = await _holidays(conn)
    await conn.execute("DELETE FROM holiday")
    await conn.executemany("INSERT INTO holiday (day, name) VALUES ($1, $2)", sorted(holidays.items()))
    return await _record_holidays(conn, actor, "holidays.replace", before, now)


async def merge_holidays(
    conn: asyncpg.Connection, actor: Actor, holidays: dict[date, str], *, now: datetime
) -> HolidayChange:
    """Add ``holidays`` to the stored list (renaming a day already in it); no day is removed."""
    before = await _holidays(conn)
    await conn.executemany(
        "INSERT INTO holiday (day, name) VALUES ($1, $2) ON CONFLICT (day) DO UPDATE SET name = EXCLUDED.name",
        sorted(holidays.items()),
    )
    return await _record_holidays(conn, actor, "holidays.merge", before, now)


async def _holidays(conn: asyncpg.Connection) -> dict[str, str]:
    return {str(r["day"]): r["name"] for r in await conn.fetch("SELECT day, name FROM holiday ORDER BY day")}


async def _record_holidays(
    conn: asyncpg.Connection, actor: Actor, action: str, before: dict[str, str], now: datetime
) -> HolidayChange:
    after = await _holidays(conn)
    moved = 0
    if before != after:
        await append_entry(conn, actor, action, "holidays", before=before, after=after, at=now)
        moved = await reschedule_drafts(conn, actor, now=now)
    return HolidayChange(len(before), len(after), moved)


# Drafts only: a submitted report was judged against its deadline, and keeps it. Locked while
# they move, so a draft submitted meanwhile is judged against one deadline or the other, whole.
_SELECT_DRAFTS = f"""
SELECT s.id, s.period, s.deadline, {", ".join(f"r.{c}" for c in _RULE_COLUMNS)}
FROM submission s JOIN regime r ON r.code = s.regime_code
WHERE s.status = 'DRAFT' AND ($1::text IS NULL OR s.regime_code = $1)
ORDER BY s.id
FOR UPDATE OF s
"""


async def reschedule_drafts(conn: asyncpg.Connection, actor: Actor, *, now: datetime, regime: str | None = None) -> int:
    """Give every draft (of ``regime``, or of every regime) the deadline its regime's rule gives
    now, as ``timeliness`` shows it; each move audited. Returns how many drafts moved."""
    days = {r["day"] for r in await conn.fetch("SELECT day FROM holiday")}
    moved = []
    for r in await conn.fetch(_SELECT_DRAFTS, regime):
        if r["deadline_rule"] not in DEADLINE_RULES | {ONE_OFF}:  # a rule this module does not know is not recomputed
            continue
        rule = Rule.of(r)
        if rule.adhoc_period not in (None, r["period"]):  # a draft of a request since moved to another period
            continue
        deadline = schedule(rule, Period.parse(r["period"]), days).deadline
        if deadline != r["deadline"]:
            moved.append((r["id"], r["deadline"], deadline))
    await conn.executemany("UPDATE submission SET deadline = $2 WHERE id = $1", [(i, new) for i, _, new in moved])
    for submission_id, old, new in moved:
        await append_entry(
            conn,
            actor,
            "submission.reschedule",
            f"submission:{submission_id}",
            before={"deadline": old},
            after={"deadline": new},
            at=now,
        )
    return len(moved)


def _checked(spec: RegimeSpec) -> _Stored:
    """Refuse what no regime can be, with why; what the spec's schedule is stored as."""
    stored = _adhoc(spec) if spec.frequency == ADHOC or spec.period or spec.deadline else _recurring(spec)
    if not spec.items:
        raise BadUserInput(f"regime {spec.code}: the form needs at least one item")
    if not spec.reporters:
        raise BadUserInput(f"regime {spec.code}: name its reporting agencies")
    if spec.extra:
        raise BadUserInput(f"regime {spec.code}: unknown keys {sorted(spec.extra)}")
    return stored


def _recurring(spec: RegimeSpec) -> _Stored:
    if spec.frequency not in FREQUENCIES:
        raise BadUserInput(f"regime {spec.code}: frequency must be one of {sorted(FREQUENCIES)}, or {ADHOC}")
    if spec.deadline_rule not in DEADLINE_RULES:
        raise BadUserInput(f"regime {spec.code}: deadline rule must be one of {sorted(DEADLINE_RULES)}")
    if spec.deadline_value is None:
        raise BadUserInput(f"regime {spec.code}: its deadline rule needs a number of days (or the day of the month)")
    if spec.frequency == WEEKLY:
        if spec.deadline_rule == "DAY_OF_NEXT_MONTH":
            raise BadUserInput(
                f"regime {spec.code} is weekly: DAY_OF_NEXT_MONTH has no meaning for a week; count"
                " DAYS_AFTER_CUTOFF or WORKING_DAYS_AFTER_CUTOFF from the week's Sunday"
            )
        _no_window(spec, "is weekly: a week's cut-off window is the week itself, Monday to Sunday")
    return _Stored(spec.frequency, spec.deadline_rule, spec.deadline_value, None, None)


def _adhoc(spec: RegimeSpec) -> _Stored:
    if spec.period is None or spec.deadline is None:
        raise BadUserInput(
            f"regime {spec.code}: an ad-hoc regime needs both the period it asks for (e.g. 2026-M10) and its"
            " deadline, an instant with its offset (e.g. 2026-11-05T17:00:00+07:00)"
        )
    try:
        period = Period.parse(spec.period)
    except BadUserInput as exc:
        raise BadUserInput(f"regime {spec.code}: {exc.message}") from None
    if spec.deadline.tzinfo is None or spec.deadline.utcoffset() is None:
        raise BadUserInput(
            f"regime {spec.code}: deadline {spec.deadline.isoformat()} has no offset:"
            " write e.g. 2026-11-05T17:00:00+07:00"
        )
    if spec.frequency not in (ADHOC, period.frequency):
        raise BadUserInput(
            f"regime {spec.code} is {_named(spec.frequency)}, but it asks for {period}, a"
            f" {FREQUENCIES[period.frequency]} period: write frequency {ADHOC} (or {period.frequency})"
        )
    if spec.deadline_rule not in (None, ONE_OFF) or spec.deadline_value not in (None, 0):
        raise BadUserInput(
            f"regime {spec.code} is ad-hoc: its deadline is the one-off deadline given; leave the deadline rule out"
        )
    _no_window(spec, "is ad-hoc: it has no cut-off window (its drafts open at once)")
    return _Stored(period.frequency, ONE_OFF, 0, str(period), spec.deadline)


def _no_window(spec: RegimeSpec, why: str) -> None:
    """Cut-off days are refused where they mean nothing, rather than kept and ignored (the defaults pass)."""
    if (spec.cutoff_start_day, spec.cutoff_end_day) != _DEFAULT_WINDOW:
        raise BadUserInput(f"regime {spec.code} {why}; leave the cut-off days out")


async def _check_periodicity(conn: asyncpg.Connection, spec: RegimeSpec, frequency: str) -> None:
    """A form holds only indicators of the regime's frequency: a value is stored for the report's
    period, and an indicator's values are kept at its own periodicity (migration 0002)."""
    rows = await conn.fetch(
        "SELECT code, periodicity FROM indicator WHERE code = ANY($1::text[]) ORDER BY code",
        [i.indicator for i in spec.items],
    )
    wrong = [f"{r['code']} is {_named(r['periodicity'])}" for r in rows if r["periodicity"] != frequency]
    if wrong:
        raise BadUserInput(
            f"regime {spec.code} is {_named(frequency)}, but {'; '.join(wrong)}:"
            f" its form may hold only {FREQUENCIES[frequency]} indicators"
        )


def _named(frequency: str) -> str:
    return f"{FREQUENCIES.get(frequency, 'per period')} ({frequency})"
