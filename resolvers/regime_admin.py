"""Creating and changing reporting regimes (admin), and the holiday list deadlines skip.

One function serves the GraphQL mutation and ``nrhub regimes import``: a regime is written whole
(its reporters and form replaced), inside the caller's transaction, with an audit entry holding
its state before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput

FREQUENCIES = {"M", "Q", "S", "A"}
DEADLINE_RULES = {"DAYS_AFTER_CUTOFF", "WORKING_DAYS_AFTER_CUTOFF", "DAY_OF_NEXT_MONTH"}


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
    frequency: str
    deadline_rule: str
    deadline_value: int
    reporters: list[str]  # agency codes, or ["PROVINCES"] for every provincial committee
    items: list[ItemSpec]
    cutoff_start_day: int = 15  # Decree 09/2019 default windows: 15th to 14th
    cutoff_end_day: int = 14
    observation_status: str = "OFFICIAL"
    jump_threshold: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_UPSERT = """
INSERT INTO regime (code, name_vi, name_en, legal_basis, issuing_agency, receiving_agency, frequency,
                    cutoff_start_day, cutoff_end_day, deadline_rule, deadline_value, observation_status, jump_threshold)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (code) DO UPDATE SET name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en,
    legal_basis = EXCLUDED.legal_basis, issuing_agency = EXCLUDED.issuing_agency,
    receiving_agency = EXCLUDED.receiving_agency, frequency = EXCLUDED.frequency,
    cutoff_start_day = EXCLUDED.cutoff_start_day, cutoff_end_day = EXCLUDED.cutoff_end_day,
    deadline_rule = EXCLUDED.deadline_rule, deadline_value = EXCLUDED.deadline_value,
    observation_status = EXCLUDED.observation_status, jump_threshold = EXCLUDED.jump_threshold
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
    return {**dict(row), "reporters": reporters, "items": items}


async def upsert_regime(conn: asyncpg.Connection, actor: Actor, spec: RegimeSpec, *, now: datetime) -> str:
    """Create or replace a regime; database constraints and these checks refuse bad input."""
    _check(spec)
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
            spec.frequency,
            spec.cutoff_start_day,
            spec.cutoff_end_day,
            spec.deadline_rule,
            spec.deadline_value,
            spec.observation_status,
            spec.jump_threshold,
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
    except asyncpg.ForeignKeyViolationError as exc:
        raise BadUserInput(f"regime {spec.code} names something that does not exist: {exc.detail}") from None
    except (asyncpg.CheckViolationError, asyncpg.UniqueViolationError) as exc:
        raise BadUserInput(f"regime {spec.code} breaks a rule: {exc.constraint_name}") from None
    after = await regime_state(conn, spec.code)
    if before == after:
        return "unchanged"
    action = "regime.update" if before else "regime.create"
    await append_entry(conn, actor, action, f"regime:{spec.code}", before=before, after=after, at=now)
    return action


async def replace_holidays(conn: asyncpg.Connection, actor: Actor, holidays: dict[date, str], *, now: datetime) -> None:
    before = {str(r["day"]): r["name"] for r in await conn.fetch("SELECT day, name FROM holiday ORDER BY day")}
    await conn.execute("DELETE FROM holiday")
    await conn.executemany("INSERT INTO holiday (day, name) VALUES ($1, $2)", sorted(holidays.items()))
    after = {str(d): n for d, n in sorted(holidays.items())}
    if before != after:
        await append_entry(conn, actor, "holidays.replace", "holidays", before=before, after=after, at=now)


def _check(spec: RegimeSpec) -> None:
    if spec.frequency not in FREQUENCIES:
        raise BadUserInput(f"regime {spec.code}: frequency must be one of {sorted(FREQUENCIES)}")
    if spec.deadline_rule not in DEADLINE_RULES:
        raise BadUserInput(f"regime {spec.code}: deadline rule must be one of {sorted(DEADLINE_RULES)}")
    if not spec.items:
        raise BadUserInput(f"regime {spec.code}: the form needs at least one item")
    if not spec.reporters:
        raise BadUserInput(f"regime {spec.code}: name its reporting agencies")
    if spec.extra:
        raise BadUserInput(f"regime {spec.code}: unknown keys {sorted(spec.extra)}")
