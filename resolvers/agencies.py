"""Agencies: the Government Office, ministries, provincial committees, partners."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from resolvers.pagination import Page, PageRequest, make_page
from resolvers.queryable import Queryable


@dataclass(frozen=True, slots=True)
class Agency:
    code: str
    short_code: str
    name_vi: str
    name_en: str
    kind: str
    unit_id: int | None
    valid_from: date
    valid_to: date | None
    notes: str | None


_COLUMNS = "code, short_code, name_vi, name_en, kind, unit_id, valid_from, valid_to, notes"
_SELECT_BY_CODES = f"SELECT {_COLUMNS} FROM agency WHERE code = ANY($1::text[])"
_SELECT_BY_UNITS = f"SELECT {_COLUMNS} FROM agency WHERE unit_id = ANY($1::int[])"
_SELECT_PAGE = f"""
SELECT {_COLUMNS} FROM agency
WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR code > $2)
ORDER BY code LIMIT $3
"""


async def fetch_agencies(db: Queryable, codes: Sequence[str]) -> list[Agency | None]:
    rows = {r["code"]: Agency(**r) for r in await db.fetch(_SELECT_BY_CODES, list(codes))}
    return [rows.get(c) for c in codes]


async def fetch_agencies_by_unit(db: Queryable, unit_ids: Sequence[int]) -> list[Agency | None]:
    rows = {r["unit_id"]: Agency(**r) for r in await db.fetch(_SELECT_BY_UNITS, list(unit_ids))}
    return [rows.get(i) for i in unit_ids]


async def list_agencies(db: Queryable, page: PageRequest, *, kind: str | None) -> Page[Agency]:
    after = page.after[0] if page.after else None
    rows = await db.fetch(_SELECT_PAGE, kind, after, page.first + 1)
    return make_page([Agency(**r) for r in rows], page, lambda a: (a.code,))
