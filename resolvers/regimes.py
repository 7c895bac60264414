"""Reporting regimes (catalogue side): their forms and reporting agencies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from nrhub.resolvers.queryable import Queryable


@dataclass(frozen=True, slots=True)
class Regime:
    code: str
    name_vi: str
    name_en: str
    legal_basis: str
    issuing_agency: str
    receiving_agency: str
    frequency: str
    cutoff_start_day: int
    cutoff_end_day: int
    deadline_rule: str
    deadline_value: int
    observation_status: str
    allow_early: bool
    expiry_days: int | None
    consolidates: str | None  # the regime whose reports of the units below this one's are consolidated
    adhoc_period: str | None  # an ad-hoc regime's one period and one-off deadline (migration 0018)
    adhoc_deadline: datetime | None


@dataclass(frozen=True, slots=True)
class RegimeItem:
    regime_code: str
    indicator_code: str
    dims: str
    required: bool
    min_value: Decimal | None
    max_value: Decimal | None


_COLUMNS = """code, name_vi, name_en, legal_basis, issuing_agency, receiving_agency, frequency,
    cutoff_start_day, cutoff_end_day, deadline_rule, deadline_value, observation_status, allow_early, expiry_days,
    consolidates, adhoc_period, adhoc_deadline"""
_SELECT_ALL = f"SELECT {_COLUMNS} FROM regime ORDER BY code"
_SELECT_BY_CODES = f"SELECT {_COLUMNS} FROM regime WHERE code = ANY($1::text[])"
_SELECT_REPORTERS = """
SELECT regime_code, agency_code FROM regime_reporter WHERE regime_code = ANY($1::text[])
ORDER BY regime_code, agency_code
"""
# A form item for an indicator the caller may not read is left out, like the indicator itself.
_SELECT_ITEMS = """
SELECT regime_code, indicator_code, dims, required, min_value, max_value FROM regime_item
WHERE regime_code = ANY($1::text[]) AND indicator_code = ANY($2::text[])
ORDER BY regime_code, indicator_code, dims
"""


async def list_regimes(db: Queryable) -> list[Regime]:
    return [Regime(**r) for r in await db.fetch(_SELECT_ALL)]


async def fetch_regimes(db: Queryable, codes: Sequence[str]) -> list[Regime | None]:
    found = {r["code"]: Regime(**r) for r in await db.fetch(_SELECT_BY_CODES, list(codes))}
    return [found.get(c) for c in codes]


async def list_reporters(db: Queryable, regime_codes: Sequence[str]) -> list[list[str]]:
    by_regime: dict[str, list[str]] = {c: [] for c in regime_codes}
    for r in await db.fetch(_SELECT_REPORTERS, list(regime_codes)):
        by_regime[r["regime_code"]].append(r["agency_code"])
    return [by_regime[c] for c in regime_codes]


async def list_items(db: Queryable, regime_codes: Sequence[str], readable: Sequence[str]) -> list[list[RegimeItem]]:
    by_regime: dict[str, list[RegimeItem]] = {c: [] for c in regime_codes}
    for r in await db.fetch(_SELECT_ITEMS, list(regime_codes), list(readable)):
        by_regime[r["regime_code"]].append(RegimeItem(**r))
    return [by_regime[c] for c in regime_codes]
