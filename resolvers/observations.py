"""Observations: current values by key, as a paginated connection, under the caller's scope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from nrhub.resolvers.errors import BadUserInput, Forbidden, HubError, NotFound
from nrhub.resolvers.pagination import Page, PageRequest, make_page
from nrhub.resolvers.queryable import Queryable
from nrhub.resolvers.scope import Scope
from nrhub.resolvers.units import Unit, fetch_unit

STATUSES = ("ESTIMATE", "PRELIMINARY", "OFFICIAL")


@dataclass(frozen=True, slots=True)
class Observation:
    revision_id: int | None  # None: a federated source's value (source names it)
    indicator_code: str
    unit_id: int
    period: str
    dims: str
    value: Decimal
    status: str
    submission_id: int | None
    source: str | None
    stale_age: int | None = None  # seconds, for a source's value served stale from the hub's cache


@dataclass(frozen=True, slots=True)
class UnitSelection:
    """Which units a data query covers: codes, or the units of a level below a parent.

    Codes and the parent are read on ``on``. ``exact`` False (the caller gave no date): a code that
    named no unit that day names the unit that carried it last before, so a pre-2025 code such as
    02 (Ha Giang) reaches its figures without a date; a reused code (01, 79) names today's unit.
    """

    codes: Sequence[str] | None = None
    parent: str | None = None
    level: str | None = None
    on: date | None = None
    exact: bool = True


@dataclass(frozen=True, slots=True)
class SelectedUnits:
    """The units a selection reaches under the caller's scope, and why any named code was left out."""

    ids: list[int]
    problems: list[HubError]


# A code names one unit on a given day (the reform reused codes such as 08); units of one code
# never overlap in time, so the unit in force is the one that started last, and without ``exact``
# ($3 true) the one that started last may also have ended.
_SELECT_NAMED = """
SELECT DISTINCT ON (u.code) u.id, u.code FROM admin_unit u
WHERE u.code = ANY($1::text[]) AND u.valid_from <= $2 AND ($3 OR u.valid_to IS NULL OR u.valid_to >= $2)
ORDER BY u.code, u.valid_from DESC
"""
_SELECT_BELOW = """
WITH RECURSIVE below AS (
    SELECT id, level FROM admin_unit
    WHERE code = $1 AND valid_from <= $3 AND (valid_to IS NULL OR valid_to >= $3)
    UNION ALL
    SELECT c.id, c.level FROM admin_unit c JOIN below b ON c.parent_id = b.id
    WHERE c.valid_from <= $3 AND (c.valid_to IS NULL OR c.valid_to >= $3)
      AND ($2::text IS NULL OR b.level <> $2)  -- no need to walk below the level asked for
)
SELECT u.id FROM admin_unit u
WHERE u.id IN (SELECT id FROM below WHERE $2::text IS NULL OR level = $2) AND u.code <> $1
  AND ($4::int[] IS NULL OR u.id = ANY($4::int[]))
ORDER BY u.code, u.valid_from
"""

_SELECT_PAGE = """
SELECT revision_id, indicator_code, unit_id, period, dims, value, status, submission_id, source
FROM observation_current
WHERE indicator_code = ANY($1::text[]) AND unit_id = ANY($2::int[])
  AND ($3::text IS NULL OR period >= $3) AND ($4::text IS NULL OR period <= $4)
  AND ($5::text IS NULL OR dims = $5) AND ($6::text IS NULL OR status = $6)
  AND ($7::text IS NULL OR (indicator_code, unit_id, period, dims) > ($7, $8::int, $9, $10))
ORDER BY indicator_code, unit_id, period, dims
LIMIT $11
"""

# Values from federated sources ($12 to $19) join the stored ones in one ordered, filtered page, so
# the cursor and the order are PostgreSQL's for both.
_SELECT_PAGE_WITH_SOURCES = """
SELECT revision_id, indicator_code, unit_id, period, dims, value, status, submission_id, source, stale_age
FROM (
    SELECT revision_id, indicator_code, unit_id, period, dims, value, status, submission_id, source,
           NULL::int AS stale_age
    FROM observation_current
    WHERE indicator_code = ANY($1::text[]) AND unit_id = ANY($2::int[])
    UNION ALL
    SELECT NULL::bigint, f.indicator_code, f.unit_id, f.period, f.dims, f.value, f.status, NULL::bigint, f.source,
           f.stale_age
    FROM unnest($12::text[], $13::int[], $14::text[], $15::text[], $16::numeric[], $17::text[], $18::text[],
                $19::int[]) AS f(indicator_code, unit_id, period, dims, value, status, source, stale_age)
) AS o
WHERE ($3::text IS NULL OR period >= $3) AND ($4::text IS NULL OR period <= $4)
  AND ($5::text IS NULL OR dims = $5) AND ($6::text IS NULL OR status = $6)
  AND ($7::text IS NULL OR (indicator_code, unit_id, period, dims) > ($7, $8::int, $9, $10))
ORDER BY indicator_code, unit_id, period, dims
LIMIT $11
"""

_SELECT_BY_REVISION = """
SELECT revision_id, indicator_code, unit_id, period, dims, value, status, submission_id, source
FROM observation_current
WHERE revision_id = ANY($1::bigint[]) AND indicator_code = ANY($2::text[])
  AND ($3::int[] IS NULL OR unit_id = ANY($3::int[]))
"""


async def select_units(db: Queryable, selection: UnitSelection, scope: Scope) -> SelectedUnits:
    """The ids of the selected units that the caller's region grants reach.

    A named code that names no unit, or one outside the caller's regions, is a problem to report
    (NOT_FOUND, FORBIDDEN); units below a parent are only those the regions reach, silently.
    """
    if selection.codes is None and selection.parent is None:
        raise BadUserInput("name units, or a parent unit (with an optional level)")
    on = selection.on or date.today()
    if selection.codes is None:
        rows = await db.fetch(_SELECT_BELOW, selection.parent, selection.level, on, scope.unit_ids)
        return SelectedUnits([r["id"] for r in rows], [])
    found = {r["code"]: r["id"] for r in await db.fetch(_SELECT_NAMED, list(selection.codes), on, not selection.exact)}
    problems: list[HubError] = []
    for code in dict.fromkeys(selection.codes):
        if code not in found:
            when = f" in force on {on.isoformat()}" if selection.exact else ""
            problems.append(NotFound(f"there is no unit {code}{when}"))
        elif not scope.covers_unit(found[code]):
            problems.append(Forbidden(f"you may not read values for unit {code}"))
    return SelectedUnits([found[c] for c in sorted(found) if scope.covers_unit(found[c])], problems)


async def select_unit_ids(db: Queryable, selection: UnitSelection, scope: Scope) -> list[int]:
    """The ids of the selected units the caller's region grants reach (problems left unreported)."""
    return (await select_units(db, selection, scope)).ids


async def list_observations(
    db: Queryable,
    page: PageRequest,
    scope: Scope,
    *,
    indicators: Sequence[str],
    unit_ids: Sequence[int],
    first_period: str | None,
    last_period: str | None,
    dims: str | None,
    status: str | None,
    federated: Sequence[Observation] = (),
) -> Page[Observation]:
    """Current values, filtered; periods compare within one frequency (SDMX text sorts by time).

    ``federated`` values (from sources, for indicators not in ``indicators``) are paged with them.
    """
    readable = [c for c in indicators if scope.may_read(c)]
    after = page.after or (None, None, None, None)
    if len(after) != 4:
        raise BadUserInput("after is not a cursor of this connection")
    args = [readable, list(unit_ids), first_period, last_period, dims, status, *after, page.first + 1]
    if federated:
        columns = ("indicator_code", "unit_id", "period", "dims", "value", "status", "source", "stale_age")
        args += [[getattr(o, c) for o in federated] for c in columns]
    rows = await db.fetch(_SELECT_PAGE_WITH_SOURCES if federated else _SELECT_PAGE, *args)
    return make_page(
        [Observation(**r) for r in rows],
        page,
        lambda o: (o.indicator_code, o.unit_id, o.period, o.dims),
    )


# The unit row is found even outside the caller's regions, so that case can be told apart
# (FORBIDDEN) from a key with no value (null); the value itself is only joined when covered. A caller
# who may read every unit gets the statement without the regions' check; both return only what an
# observation needs. The point lookup is that one statement, and its shape shows: with the unit's
# columns and a NULL regions array as well, the serving process spent about 3 us more a lookup
# (measured: 60 to 62 us of user CPU against 57 to 59, bench/README.md).
def _select_value(covered: str) -> str:
    return f"""
SELECT u.id AS unit_id, {covered} AS covered, c.revision_id, c.value, c.status, c.submission_id, c.source
FROM admin_unit u
LEFT JOIN observation_current c
       ON c.indicator_code = $1 AND c.unit_id = u.id AND c.period = $3 AND c.dims = $4 AND {covered}
WHERE u.code = $2 AND u.valid_from <= $5 AND (u.valid_to IS NULL OR u.valid_to >= $5)
"""


_SELECT_VALUE_EVERYWHERE = _select_value("TRUE")
_SELECT_VALUE_IN_REGIONS = _select_value("u.id = ANY($6::int[])")


@dataclass(frozen=True, slots=True)
class UnitKey:
    """What a source needs of a unit: its id, its code, its level (for ``fromLevel``), and when it
    was in force."""

    id: int
    code: str
    level: str
    valid_from: date
    valid_to: date | None

    @classmethod
    def of(cls, unit: Unit) -> UnitKey:
        return cls(unit.id, unit.code, unit.level, unit.valid_from, unit.valid_to)


@dataclass(frozen=True, slots=True)
class PointLookup:
    """The outcome of one key's lookup: the unit may be unknown, out of scope, or have no value.

    For an indicator a federated source serves, stored values do not count: the lookup gives the
    unit, for the source to be asked about.
    """

    unit_found: bool
    covered: bool
    observation: Observation | None
    unit: UnitKey | None = None  # a federated indicator's lookup only


async def fetch_observation(
    db: Queryable,
    scope: Scope,
    indicator: str,
    unit_code: str,
    period: str,
    dims: str,
    on: date,
    *,
    federated: bool,
) -> PointLookup:
    """One current value by key, in one statement; the caller has checked the indicator grant.

    ``federated``: a source serves the indicator, so only the unit is looked up (the source is asked
    only if the scope covers it: resolvers.sources.loaders checks again before any call).
    """
    if federated:
        found = await fetch_unit(db, unit_code, on)
        if found is None:
            return PointLookup(False, False, None)
        return PointLookup(True, scope.covers_unit(found.id), None, UnitKey.of(found))
    if scope.unit_ids is None:
        row = await db.fetchrow(_SELECT_VALUE_EVERYWHERE, indicator, unit_code, period, dims, on)
    else:
        row = await db.fetchrow(_SELECT_VALUE_IN_REGIONS, indicator, unit_code, period, dims, on, scope.unit_ids)
    if row is None:
        return PointLookup(False, False, None)
    if row["revision_id"] is None:
        return PointLookup(True, row["covered"], None)
    observation = Observation(
        row["revision_id"],
        indicator,
        row["unit_id"],
        period,
        dims,
        row["value"],
        row["status"],
        row["submission_id"],
        row["source"],
    )
    return PointLookup(True, True, observation)


async def fetch_observations(db: Queryable, revision_ids: Sequence[int], scope: Scope) -> list[Observation | None]:
    rows = await db.fetch(_SELECT_BY_REVISION, list(revision_ids), scope.indicators, scope.unit_ids)
    found = {r["revision_id"]: Observation(**r) for r in rows}
    return [found.get(i) for i in revision_ids]
