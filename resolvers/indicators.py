"""The indicator catalogue, always read through the caller's indicator grants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from nrhub.resolvers.pagination import Page, PageRequest, make_page
from nrhub.resolvers.queryable import Queryable
from nrhub.resolvers.scope import Scope
from nrhub.resolvers.text import fold


@dataclass(frozen=True, slots=True)
class Indicator:
    code: str
    name_vi: str
    name_en: str
    definition: str | None
    field: str
    unit_of_measure: str
    value_type: str
    decimals: int
    periodicity: str
    aggregation: str
    numerator_code: str | None
    denominator_code: str | None
    ratio_factor: Decimal | None
    responsible_agency: str
    sensitivity: str
    source: str
    source_note: str | None
    # Where a rate's numerator and denominator live ('hub' or a source's name), read with the rate
    # itself: an aggregate of the rate combines them from there, whether the caller may read them or not.
    numerator_source: str | None
    denominator_source: str | None


@dataclass(frozen=True, slots=True)
class Dimension:
    code: str
    name_vi: str
    name_en: str
    values: tuple[tuple[str, str, str], ...]  # (code, name_vi, name_en), total '_T' first


@dataclass(frozen=True, slots=True)
class Field:
    code: str
    name_vi: str
    name_en: str


_COLUMNS = """code, name_vi, name_en, definition, field, unit_of_measure, value_type, decimals,
    periodicity, aggregation, numerator_code, denominator_code, ratio_factor, responsible_agency,
    sensitivity, source, source_note,
    (SELECT n.source FROM indicator n WHERE n.code = indicator.numerator_code) AS numerator_source,
    (SELECT d.source FROM indicator d WHERE d.code = indicator.denominator_code) AS denominator_source"""

# The grant is part of every statement: a code the caller may not read is simply not found.
_SELECT_BY_CODES = f"""
SELECT {_COLUMNS} FROM indicator WHERE code = ANY($1::text[]) AND code = ANY($2::text[])
"""
_SELECT_PAGE = f"""
SELECT {_COLUMNS} FROM indicator
WHERE code = ANY($1::text[])
  AND ($2::text IS NULL OR field = $2)
  AND ($3::text IS NULL OR periodicity = $3)
  AND ($4::text IS NULL OR responsible_agency = $4)
  AND ($5::text IS NULL OR source = $5)
  AND ($6::text IS NULL OR strpos(search_text, $6) > 0)
  AND ($7::text IS NULL OR code > $7)
ORDER BY code LIMIT $8
"""
_SELECT_BY_AGENCIES = f"""
SELECT {_COLUMNS} FROM indicator
WHERE responsible_agency = ANY($1::text[]) AND code = ANY($2::text[]) ORDER BY code
"""
_SELECT_DIMENSIONS = """
SELECT d.indicator_code, dim.code, dim.name_vi, dim.name_en,
       array_agg(ARRAY[v.code, v.name_vi, v.name_en] ORDER BY v.code <> '_T', v.code) AS vals
FROM indicator_dimension d
JOIN dimension dim ON dim.code = d.dimension_code
JOIN dimension_value v ON v.dimension_code = dim.code
WHERE d.indicator_code = ANY($1::text[])
GROUP BY d.indicator_code, d.position, dim.code
ORDER BY d.indicator_code, d.position
"""
_SELECT_FIELDS = "SELECT code, name_vi, name_en FROM indicator_field WHERE code = ANY($1::text[])"


async def fetch_indicators(db: Queryable, codes: Sequence[str], scope: Scope) -> list[Indicator | None]:
    rows = await db.fetch(_SELECT_BY_CODES, list(codes), scope.indicators)
    found = {r["code"]: Indicator(**r) for r in rows}
    return [found.get(c) for c in codes]


async def list_indicators(
    db: Queryable,
    page: PageRequest,
    scope: Scope,
    *,
    field: str | None,
    periodicity: str | None,
    responsible_agency: str | None,
    source: str | None,
    search: str | None,
) -> Page[Indicator]:
    after = page.after[0] if page.after else None
    rows = await db.fetch(
        _SELECT_PAGE,
        scope.indicators,
        field,
        periodicity,
        responsible_agency,
        source,
        fold(search) if search else None,
        after,
        page.first + 1,
    )
    return make_page([Indicator(**r) for r in rows], page, lambda i: (i.code,))


async def list_indicators_by_agency(db: Queryable, agency_codes: Sequence[str], scope: Scope) -> list[list[Indicator]]:
    by_agency: dict[str, list[Indicator]] = {c: [] for c in agency_codes}
    for r in await db.fetch(_SELECT_BY_AGENCIES, list(agency_codes), scope.indicators):
        by_agency[r["responsible_agency"]].append(Indicator(**r))
    return [by_agency[c] for c in agency_codes]


async def list_dimensions(db: Queryable, indicator_codes: Sequence[str]) -> list[list[Dimension]]:
    by_indicator: dict[str, list[Dimension]] = {c: [] for c in indicator_codes}
    for r in await db.fetch(_SELECT_DIMENSIONS, list(indicator_codes)):
        values = tuple((v[0], v[1], v[2]) for v in r["vals"])
        by_indicator[r["indicator_code"]].append(Dimension(r["code"], r["name_vi"], r["name_en"], values))
    return [by_indicator[c] for c in indicator_codes]


async def fetch_fields(db: Queryable, codes: Sequence[str]) -> list[Field | None]:
    found = {r["code"]: Field(**r) for r in await db.fetch(_SELECT_FIELDS, list(codes))}
    return [found.get(c) for c in codes]
