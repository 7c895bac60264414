"""Administrative units, their hierarchy and the 2025 reform lineage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from nrhub.resolvers.pagination import Page, PageRequest, make_page
from nrhub.resolvers.queryable import Queryable
from nrhub.resolvers.text import fold


@dataclass(frozen=True, slots=True)
class Unit:
    id: int
    code: str
    name_vi: str
    name_en: str
    level: str
    kind: str | None
    parent_id: int | None
    valid_from: date
    valid_to: date | None
    legal_basis: str | None
    synthetic: bool


@dataclass(frozen=True, slots=True)
class Lineage:
    old_unit_id: int
    new_unit_id: int
    relation: str
    effective_date: date
    legal_basis: str | None


_COLUMNS = "id, code, name_vi, name_en, level, kind, parent_id, valid_from, valid_to, legal_basis, synthetic"

_SELECT_BY_IDS = f"SELECT {_COLUMNS} FROM admin_unit WHERE id = ANY($1::int[])"

# A code can name two units (the reform reused codes): the one in force on the date wins.
_SELECT_BY_CODE = f"""
SELECT {_COLUMNS} FROM admin_unit
WHERE code = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2)
"""

_SELECT_PAGE = f"""
SELECT {_COLUMNS} FROM admin_unit u
WHERE ($1::text IS NULL OR level = $1)
  AND ($2::text IS NULL OR parent_id IN (SELECT id FROM admin_unit p WHERE p.code = $2
                                          AND p.valid_from <= $3 AND (p.valid_to IS NULL OR p.valid_to >= $3)))
  AND ($4::bool OR (valid_from <= $3 AND (valid_to IS NULL OR valid_to >= $3)))
  AND ($5::text IS NULL OR strpos(search_text, $5) > 0)
  AND ($6::text IS NULL OR (code, valid_from) > ($6, $7::date))
ORDER BY code, valid_from
LIMIT $8
"""

_SELECT_CHILDREN = f"""
SELECT {_COLUMNS} FROM admin_unit
WHERE parent_id = ANY($1::int[]) AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2)
ORDER BY code
"""

_SELECT_LINEAGE_TO = """
SELECT old_unit_id, new_unit_id, relation, effective_date, legal_basis
FROM unit_lineage WHERE new_unit_id = ANY($1::int[]) ORDER BY old_unit_id
"""
_SELECT_LINEAGE_FROM = """
SELECT old_unit_id, new_unit_id, relation, effective_date, legal_basis
FROM unit_lineage WHERE old_unit_id = ANY($1::int[]) ORDER BY new_unit_id
"""


async def fetch_units_by_id(db: Queryable, ids: Sequence[int]) -> list[Unit | None]:
    rows = {r["id"]: Unit(**r) for r in await db.fetch(_SELECT_BY_IDS, list(ids))}
    return [rows.get(i) for i in ids]


async def fetch_unit(db: Queryable, code: str, on: date) -> Unit | None:
    row = await db.fetchrow(_SELECT_BY_CODE, code, on)
    return Unit(**row) if row else None


async def list_units(
    db: Queryable,
    page: PageRequest,
    *,
    level: str | None,
    parent: str | None,
    valid_on: date,
    all_dates: bool,
    search: str | None,
) -> Page[Unit]:
    after_code, after_from = page.after if page.after else (None, None)
    rows = await db.fetch(
        _SELECT_PAGE,
        level,
        parent,
        valid_on,
        all_dates,
        fold(search) if search else None,
        after_code,
        date.fromisoformat(after_from) if after_from else None,
        page.first + 1,
    )
    return make_page([Unit(**r) for r in rows], page, lambda u: (u.code, u.valid_from.isoformat()))


async def list_children(db: Queryable, parent_ids: Sequence[int], on: date) -> list[list[Unit]]:
    by_parent: dict[int, list[Unit]] = {i: [] for i in parent_ids}
    for r in await db.fetch(_SELECT_CHILDREN, list(parent_ids), on):
        by_parent[r["parent_id"]].append(Unit(**r))
    return [by_parent[i] for i in parent_ids]


async def list_predecessors(db: Queryable, unit_ids: Sequence[int]) -> list[list[Lineage]]:
    """For each unit, the lineage links from the units it was formed from."""
    by_unit: dict[int, list[Lineage]] = {i: [] for i in unit_ids}
    for r in await db.fetch(_SELECT_LINEAGE_TO, list(unit_ids)):
        by_unit[r["new_unit_id"]].append(Lineage(**r))
    return [by_unit[i] for i in unit_ids]


async def list_successors(db: Queryable, unit_ids: Sequence[int]) -> list[list[Lineage]]:
    """For each unit, the lineage links to the units it became part of."""
    by_unit: dict[int, list[Lineage]] = {i: [] for i in unit_ids}
    for r in await db.fetch(_SELECT_LINEAGE_FROM, list(unit_ids)):
        by_unit[r["old_unit_id"]].append(Lineage(**r))
    return [by_unit[i] for i in unit_ids]
