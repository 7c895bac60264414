"""A regime's approval levels: the chain a submitted report climbs, and who acts at each level.

A level is acted on by the reporting agency itself (REPORTER: another person of it, as the
provincial committee approves what its statistics office prepared), by the committee of the unit
above the report's (UNIT_ABOVE: a province approves its communes' reports) or by a named agency
(AGENCY: a ministry, the Government Office). A regime that names no levels has one, its receiving
agency: the SQL function ``regime_levels`` (migration 0020) makes that level, for every reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

import asyncpg

from nrhub.resolvers.errors import BadUserInput, NotFound
from nrhub.resolvers.queryable import Queryable

MOST_LEVELS = 9  # the database checks it too


class ActedBy(StrEnum):
    REPORTER = "REPORTER"
    UNIT_ABOVE = "UNIT_ABOVE"
    AGENCY = "AGENCY"


@dataclass(frozen=True, slots=True)
class Level:
    position: int  # 1 acts first on a submitted report
    name_vi: str
    name_en: str
    acted_by: str
    agency_code: str | None  # for AGENCY levels


@dataclass(frozen=True, slots=True)
class Chain:
    """A regime's levels and the one whose approval makes the values current observations."""

    levels: list[Level]
    publish_level: int

    @property
    def last(self) -> int:
        return len(self.levels)

    def at(self, position: int) -> Level:
        return self.levels[position - 1]


_SELECT_LEVELS = "SELECT level AS position, name_vi, name_en, acted_by, agency_code FROM regime_levels($1)"


async def chain_of(db: Queryable, regime: str) -> Chain:
    levels = [Level(**r) for r in await db.fetch(_SELECT_LEVELS, regime)]
    if not levels:
        raise NotFound(f"there is no regime {regime}")
    publish = await db.fetchval("SELECT publish_level FROM regime WHERE code = $1", regime)
    return Chain(levels, publish or len(levels))


async def acting_agency(db: Queryable, level: Level, reporter: str, unit_id: int) -> str | None:
    """The agency that acts at ``level`` on the report of ``reporter`` for ``unit_id``; None when the
    unit above has no committee."""
    agency: str | None = await db.fetchval(
        "SELECT level_agency($1, $2, $3, $4)", level.acted_by, level.agency_code, reporter, unit_id
    )
    return agency


async def approvers(db: Queryable, regime: str, reporter: str, unit_id: int) -> set[str]:
    """Every agency acting on the report at some level: each sees it, as its receiving agency does."""
    found = await db.fetchval("SELECT report_approvers($1, $2, $3)", regime, reporter, unit_id)
    return {a for a in found or () if a is not None}


def check_levels(levels: Sequence[Level], publish_level: int | None) -> None:
    """Levels numbered 1..n in order, each AGENCY level naming its agency and no other naming one."""
    if len(levels) > MOST_LEVELS:
        raise BadUserInput(f"a regime has at most {MOST_LEVELS} approval levels")
    for expected, level in enumerate(levels, start=1):
        if level.position != expected:
            raise BadUserInput(f"approval levels are numbered 1 to {len(levels)} in order; found {level.position}")
        if level.acted_by not in ActedBy.__members__:
            raise BadUserInput(f"level {level.position}: acted by REPORTER, UNIT_ABOVE or AGENCY, not {level.acted_by}")
        if (level.acted_by == ActedBy.AGENCY) != (level.agency_code is not None):
            raise BadUserInput(f"level {level.position}: an AGENCY level names its agency, and only it does")
        if not (level.name_vi.strip() and level.name_en.strip()):
            raise BadUserInput(f"level {level.position}: it needs a Vietnamese and an English name")
    if publish_level is not None and not 1 <= publish_level <= max(len(levels), 1):
        raise BadUserInput(f"the publishing level is one of the regime's levels (1 to {max(len(levels), 1)})")


async def replace_levels(conn: asyncpg.Connection, regime: str, levels: Sequence[Level]) -> list[dict[str, object]]:
    """Write the regime's levels whole (in the caller's transaction); the new state, for its audit entry.

    Reports already climbing keep the decisions made on them: a level's position is what they record."""
    await conn.execute("DELETE FROM regime_level WHERE regime_code = $1", regime)
    try:
        await conn.executemany(
            "INSERT INTO regime_level (regime_code, level, name_vi, name_en, acted_by, agency_code)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [(regime, lv.position, lv.name_vi, lv.name_en, lv.acted_by, lv.agency_code) for lv in levels],
        )
    except asyncpg.ForeignKeyViolationError:
        named = sorted({lv.agency_code for lv in levels if lv.agency_code})
        raise NotFound(f"an approval level names an agency that does not exist (one of {', '.join(named)})") from None
    return [asdict(lv) for lv in levels]


@dataclass(frozen=True, slots=True)
class Decides:
    """The reports an agency decides on at some level, or receives: its live events follow them."""

    regimes: frozenset[str]  # at an AGENCY level, or as the receiving agency: every report
    below_regimes: frozenset[str]  # at a UNIT_ABOVE level: the reports of ``below_units``
    below_units: frozenset[int]

    def covers(self, regime: str, unit_id: int) -> bool:
        return regime in self.regimes or (regime in self.below_regimes and unit_id in self.below_units)


async def decides(db: Queryable, agency: str | None) -> Decides:
    rows = await db.fetch(
        "SELECT code AS regime, 'AGENCY' AS acted_by FROM regime WHERE receiving_agency = $1"
        " UNION SELECT regime_code, acted_by FROM regime_level WHERE agency_code = $1 OR acted_by = 'UNIT_ABOVE'",
        agency,
    )
    units = await db.fetch(
        "SELECT u.id FROM admin_unit u JOIN agency a ON a.unit_id = u.parent_id WHERE a.code = $1", agency
    )
    return Decides(
        frozenset(r["regime"] for r in rows if r["acted_by"] == ActedBy.AGENCY),
        frozenset(r["regime"] for r in rows if r["acted_by"] == ActedBy.UNIT_ABOVE),
        frozenset(r["id"] for r in units),
    )
