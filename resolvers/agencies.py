"""Agencies: the Government Office, ministries, provincial committees, partners.

Read by the API; added by operators (``nrhub agencies create``), audited like every catalogue change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from enum import StrEnum

import asyncpg

from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput, Conflict, NotFound
from nrhub.resolvers.pagination import Page, PageRequest, make_page
from nrhub.resolvers.queryable import Queryable


class AgencyKind(StrEnum):
    """What an agency is; the CHECK on agency.kind (migration 0001) allows exactly these."""

    GOVERNMENT_OFFICE = "GOVERNMENT_OFFICE"
    MINISTRY = "MINISTRY"
    MINISTERIAL_AGENCY = "MINISTERIAL_AGENCY"
    PROVINCIAL_COMMITTEE = "PROVINCIAL_COMMITTEE"
    COMMUNE_COMMITTEE = "COMMUNE_COMMITTEE"  # migration 0020: communes report to their province
    PARTNER = "PARTNER"


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


@dataclass(frozen=True, slots=True)
class NewAgency:
    """An agency an operator adds. A committee names the current unit it reports for: a provincial
    committee its province, a commune committee its commune."""

    code: str
    short_code: str
    name_vi: str
    name_en: str
    kind: AgencyKind
    unit: str | None
    valid_from: date
    notes: str | None = None


_SELECT_UNIT = "SELECT id FROM admin_unit WHERE code = $1 AND level = $2 AND valid_to IS NULL"
_COMMITTEES = {AgencyKind.PROVINCIAL_COMMITTEE: "PROVINCE", AgencyKind.COMMUNE_COMMITTEE: "COMMUNE"}
_SELECT_AGENCY_OF_UNIT = "SELECT code FROM agency WHERE unit_id = $1"
_INSERT = f"""
INSERT INTO agency (code, short_code, name_vi, name_en, kind, unit_id, valid_from, notes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}
"""
# What each CHECK on agency (migration 0001) means to an operator who broke it.
_CHECKS = {
    "agency_code_check": "a code is 2-32 characters: an upper-case letter, then upper-case letters, digits or _",
    "agency_name_vi_check": "the Vietnamese name is empty",
    "agency_name_en_check": "the English name is empty",
}


async def insert_agency(conn: asyncpg.Connection, actor: Actor, new: NewAgency, *, now: datetime) -> Agency:
    """Add an agency, audited (``catalogue.agency``) in the caller's transaction."""
    subject = f"agency {new.code}"
    unit_id = await _unit_of(conn, new)
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction goes on to report it
            row = await conn.fetchrow(
                _INSERT, new.code, new.short_code, new.name_vi, new.name_en, new.kind.value, unit_id,
                new.valid_from, new.notes,
            )  # fmt: skip
    except asyncpg.UniqueViolationError:
        raise Conflict(f"{subject} exists already") from None
    except asyncpg.CheckViolationError as exc:
        raise BadUserInput(f"{subject}: {_CHECKS.get(exc.constraint_name or '', exc.message)}") from None
    assert row is not None
    agency = Agency(**row)
    await append_entry(conn, actor, "catalogue.agency", subject, after=asdict(agency), at=now)
    return agency


async def _unit_of(conn: asyncpg.Connection, new: NewAgency) -> int | None:
    """The unit a committee governs (one committee per unit); None for other kinds."""
    level = _COMMITTEES.get(new.kind)
    if level is None:
        if new.unit is not None:
            raise BadUserInput(f"agency {new.code}: only a committee reports for a unit")
        return None
    named = level.lower()
    if new.unit is None:
        raise BadUserInput(f"agency {new.code}: a {new.kind.value} names the {named} it reports for")
    unit_id = await conn.fetchval(_SELECT_UNIT, new.unit, level)
    if unit_id is None:
        raise NotFound(f"there is no current {named} {new.unit}")
    holder = await conn.fetchval(_SELECT_AGENCY_OF_UNIT, unit_id)
    if holder is not None:
        raise Conflict(f"{named} {new.unit} has its committee already: agency {holder}")
    return int(unit_id)
