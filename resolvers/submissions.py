"""The reporting workflow: DRAFT -> SUBMITTED -> ACCEPTED, or SUBMITTED -> RETURNED -> a new DRAFT.

A submitted report climbs its regime's approval levels (resolvers/approvals.py) while SUBMITTED;
the last level's acceptance and the first level's return are the ``accept`` and
``return_to_reporter`` here.

Every function here runs inside the caller's transaction and appends its audit entry there, so a
change and its record commit together or not at all. ``submitted_at`` comes from the server's
clock, and whether a report was on time follows from it and the regime's deadline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import asyncpg
import orjson

from nrhub.resolvers.audit import Actor, append_entry, revision_digest
from nrhub.resolvers.deadlines import Rule, schedule
from nrhub.resolvers.errors import BadUserInput, Conflict, Forbidden, NotFound
from nrhub.resolvers.period_locks import require_unlocked, require_window_open
from nrhub.resolvers.periods import Period
from nrhub.resolvers.rules import settle_explanations
from nrhub.resolvers.validation import Problem, validate_values

EVENT_CHANNEL = "hub_events"


@dataclass(frozen=True, slots=True)
class Submission:
    id: int
    regime_code: str
    agency_code: str
    unit_id: int
    period: str
    version: int
    status: str
    created_at: datetime
    created_by: str
    deadline: datetime
    submitted_at: datetime | None
    on_time: bool | None
    reviewed_at: datetime | None
    reviewed_by: str | None
    return_reason: str | None
    submitted_by: str | None
    correction_reason: str | None  # set on a version that corrects an accepted one


@dataclass(frozen=True, slots=True)
class CellValue:
    indicator_code: str
    dims: str
    value: Decimal
    unit_code: str | None = None  # None: the report's own unit; else that unit or one directly below it
    comment: str | None = None  # the reporter's note on the figure, saved with it (migration 0017)
    consolidated_from: list[int] | None = None  # the reports below it was consolidated from (migration 0020)


SUBMISSION_COLUMNS = """id, regime_code, agency_code, unit_id, period, version, status, created_at, created_by,
    deadline, submitted_at, on_time, reviewed_at, reviewed_by, return_reason, submitted_by, correction_reason"""
_SELECT = f"SELECT {SUBMISSION_COLUMNS} FROM submission WHERE id = $1"
SELECT_FOR_UPDATE = _SELECT + " FOR UPDATE"
_SELECT_REGIME = """
SELECT r.code, r.frequency, r.cutoff_start_day, r.cutoff_end_day, r.deadline_rule, r.deadline_value,
       r.adhoc_period, r.adhoc_deadline, r.receiving_agency, r.observation_status, r.allow_early,
       EXISTS (SELECT 1 FROM regime_reporter rr WHERE rr.regime_code = r.code AND rr.agency_code = $2) AS reporter
FROM regime r WHERE r.code = $1
"""
_SELECT_AGENCY_UNIT = """
SELECT coalesce(a.unit_id, (SELECT id FROM admin_unit WHERE level = 'NATION')) FROM agency a WHERE a.code = $1
"""
_INSERT = f"""
INSERT INTO submission (regime_code, agency_code, unit_id, period, version, status, created_at, created_by, deadline,
                        correction_reason)
VALUES ($1, $2, $3, $4, $5, 'DRAFT', $6, $7, $8, $9) RETURNING {SUBMISSION_COLUMNS}
"""
_UPSERT_VALUE = """
INSERT INTO submission_value (submission_id, indicator_code, unit_id, dims, value, comment)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (submission_id, indicator_code, unit_id, dims)
DO UPDATE SET value = EXCLUDED.value, comment = EXCLUDED.comment, consolidated_from = NULL
"""
_SELECT_VALUES = """
SELECT v.indicator_code, v.dims, v.value, u.code AS unit_code, v.comment, v.consolidated_from
FROM submission_value v JOIN admin_unit u ON u.id = v.unit_id
WHERE v.submission_id = $1 ORDER BY u.code, v.indicator_code, v.dims
"""
# The report's own unit and the units directly below it in force at the period's end.
_SELECT_REPORT_UNITS = """
SELECT id, code FROM admin_unit
WHERE (id = $1 OR parent_id = $1) AND valid_from <= period_end($2) AND (valid_to IS NULL OR valid_to >= period_end($2))
"""
_COPY_ABOVE = 500
_STAGE_VALUES = """
CREATE TEMPORARY TABLE cell_stage (submission_id bigint, indicator_code text, unit_id integer, dims text,
                                   value numeric, comment text) ON COMMIT DROP
"""
_UPSERT_STAGED = """
INSERT INTO submission_value (submission_id, indicator_code, unit_id, dims, value, comment)
SELECT DISTINCT ON (submission_id, indicator_code, unit_id, dims) * FROM cell_stage
ON CONFLICT (submission_id, indicator_code, unit_id, dims)
DO UPDATE SET value = EXCLUDED.value, comment = EXCLUDED.comment, consolidated_from = NULL
"""
COMMENT_LONGEST = 2000  # the database checks it too (migration 0017)
_AUDIT_CELLS_IN_FULL = 200  # larger saves record a count and a digest instead of every cell


def actor_name(actor: Actor) -> str:
    return actor.user or actor.client or "unknown"


async def fetch_submission(conn: asyncpg.Connection | asyncpg.Pool, submission_id: int) -> Submission | None:
    row = await conn.fetchrow(_SELECT, submission_id)
    return Submission(**row) if row else None


async def fetch_values(conn: asyncpg.Connection | asyncpg.Pool, submission_id: int) -> list[CellValue]:
    return [CellValue(**r) for r in await conn.fetch(_SELECT_VALUES, submission_id)]


async def holidays(conn: asyncpg.Connection) -> set[date]:
    return {r["day"] for r in await conn.fetch("SELECT day FROM holiday")}


async def open_draft(conn: asyncpg.Connection, actor: Actor, *, regime: str, period: str, now: datetime) -> Submission:
    """A draft for (regime, period) of the actor's own agency; its open draft if there is one."""
    agency = actor.agency
    row = await conn.fetchrow(_SELECT_REGIME, regime, agency)
    if row is None:
        raise NotFound(f"there is no regime {regime}")
    parsed = Period.parse(period)
    if parsed.frequency != row["frequency"]:
        raise BadUserInput(f"regime {regime} is reported per {row['frequency']} period, not {period}")
    if row["adhoc_period"] is not None and str(parsed) != row["adhoc_period"]:
        raise BadUserInput(f"regime {regime} is an ad-hoc request for {row['adhoc_period']} only, not {period}")
    if not row["reporter"] or agency is None:
        raise Forbidden(f"agency {agency} does not report under regime {regime}")
    unit_id = await conn.fetchval(_SELECT_AGENCY_UNIT, agency)
    in_force = await conn.fetchval(
        "SELECT valid_from <= period_end($2) AND (valid_to IS NULL OR valid_to >= period_end($2))"
        " FROM admin_unit WHERE id = $1",
        unit_id,
        period,
    )
    if not in_force:
        raise BadUserInput(
            f"{agency}'s unit was not in force at the end of {period}; that period belongs to the units of the time"
        )
    versions = await _versions(conn, regime, agency, unit_id, period)
    if versions and versions[0].status == "DRAFT":
        return versions[0]
    if versions and versions[0].status == "ACCEPTED":
        raise Conflict(f"the report for {period} is already accepted; change a figure of it with correctValue")
    if versions and versions[0].status != "RETURNED":
        raise Conflict(f"the report for {period} is already {versions[0].status.lower()}")
    planned = schedule(Rule.of(row), parsed, await holidays(conn))
    if planned.opens_at is not None:  # None: an ad-hoc request, open from the moment it exists
        require_window_open(regime, period, planned.opens_at, row["allow_early"], now)
    deadline = versions[0].deadline if versions else planned.deadline  # a returned report keeps its deadline
    await require_unlocked(conn, regime, agency, period, deadline, now)
    version = versions[0].version + 1 if versions else 1
    created = Submission(
        **await conn.fetchrow(_INSERT, regime, agency, unit_id, period, version, now, actor_name(actor), deadline, None)
    )
    await append_entry(
        conn,
        actor,
        "submission.open",
        f"submission:{created.id}",
        after={"regime": regime, "period": period, "version": version, "deadline": deadline},
        at=now,
    )
    return created


async def _versions(conn: asyncpg.Connection, regime: str, agency: str, unit_id: int, period: str) -> list[Submission]:
    """Every version of one report, the latest first, with new versions of it held off until commit."""
    # Serialise new versions of the same report, so two clients cannot both start the same version.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{regime}|{agency}|{unit_id}|{period}")
    rows = await conn.fetch(
        f"SELECT {SUBMISSION_COLUMNS} FROM submission WHERE regime_code = $1 AND agency_code = $2 AND unit_id = $3"
        " AND period = $4 ORDER BY version DESC",
        regime,
        agency,
        unit_id,
        period,
    )
    return [Submission(**r) for r in rows]


async def save_values(
    conn: asyncpg.Connection, actor: Actor, submission_id: int, values: Sequence[CellValue], *, now: datetime
) -> tuple[Submission, list[Problem]]:
    """Store cells of a draft; cells outside the regime's form or the report's units are refused."""
    submission = await _own_draft(conn, actor, submission_id)
    await _require_unlocked(conn, submission, now)
    units, problems = await _confine(conn, submission, values)
    if problems:
        return submission, problems
    await _store(conn, actor, submission, values, units, now)
    return submission, []


async def _confine(
    conn: asyncpg.Connection, submission: Submission, values: Sequence[CellValue]
) -> tuple[dict[str | None, int], list[Problem]]:
    """The report's units by code (None: its own unit), and a problem for each cell it may not hold.

    A report holds only its regime's form cells, for its own unit and the units directly below
    it, each cell once: this is what confines every write of a report, drafts and corrections.
    """
    form = {
        (r["indicator_code"], r["dims"])
        for r in await conn.fetch(
            "SELECT indicator_code, dims FROM regime_item WHERE regime_code = $1", submission.regime_code
        )
    }
    rows = await conn.fetch(_SELECT_REPORT_UNITS, submission.unit_id, submission.period)
    units: dict[str | None, int] = {r["code"]: r["id"] for r in rows}
    if submission.unit_id not in units.values():
        raise BadUserInput(f"the report's unit was not in force at the end of {submission.period}")
    units[None] = submission.unit_id
    problems: list[Problem] = []
    seen: set[tuple[int, str, str]] = set()
    for v in values:
        if (v.indicator_code, v.dims) not in form:
            problems.append(
                Problem(v.indicator_code, v.dims, f"not a cell of the {submission.regime_code} form", "ERROR")
            )
        elif v.unit_code not in units:
            problems.append(
                Problem(
                    v.indicator_code,
                    v.dims,
                    f"unit {v.unit_code} is neither the report's unit nor directly below it",
                    "ERROR",
                )
            )
        elif v.comment is not None and not (v.comment.strip() and len(v.comment) <= COMMENT_LONGEST):
            wrong = f"a comment has 1 to {COMMENT_LONGEST:,} characters"
            problems.append(Problem(v.indicator_code, v.dims, wrong, "ERROR"))
        elif (units[v.unit_code], v.indicator_code, v.dims) in seen:
            where = f" of unit {v.unit_code}" if v.unit_code else ""
            problems.append(Problem(v.indicator_code, v.dims, f"the cell{where} is given more than once", "ERROR"))
        else:
            seen.add((units[v.unit_code], v.indicator_code, v.dims))
    return units, problems


async def _store(
    conn: asyncpg.Connection,
    actor: Actor,
    submission: Submission,
    values: Sequence[CellValue],
    units: dict[str | None, int],
    now: datetime,
) -> dict[str, Decimal]:
    """Write confined cells into a draft and audit what changed; the changed cells by key."""
    own = next(code for code, unit_id in units.items() if code is not None and unit_id == submission.unit_id)
    stored = {_cell_key(v, own): v for v in await fetch_values(conn, submission.id)}
    before = {key: v.value for key, v in stored.items()}
    rows = [(submission.id, v.indicator_code, units[v.unit_code], v.dims, v.value, v.comment) for v in values]
    if len(rows) > _COPY_ABOVE:
        # Bulk entry: COPY into a scratch table and upsert in one statement (20,000 cells in well under 2 s).
        await conn.execute(_STAGE_VALUES)
        await conn.copy_records_to_table("cell_stage", records=rows)
        await conn.execute(_UPSERT_STAGED)
    else:
        await conn.executemany(_UPSERT_VALUE, rows)
    changed = {_cell_key(v, own): v.value for v in values if before.get(_cell_key(v, own)) != v.value}
    if len(changed) > _AUDIT_CELLS_IN_FULL:
        digest = hashlib.sha256(orjson.dumps(sorted([k, str(v)] for k, v in changed.items()))).hexdigest()
        await append_entry(
            conn,
            actor,
            "submission.values",
            f"submission:{submission.id}",
            after={"cells": len(changed), "digest": digest},
            at=now,
        )
    elif changed:
        await append_entry(
            conn,
            actor,
            "submission.values",
            f"submission:{submission.id}",
            before={k: before.get(k) for k in changed},
            after=changed,
            at=now,
        )
    await _audit_comments(conn, actor, submission, stored, values, own, now)
    return changed


async def _audit_comments(
    conn: asyncpg.Connection,
    actor: Actor,
    submission: Submission,
    stored: dict[str, CellValue],
    values: Sequence[CellValue],
    own: str,
    now: datetime,
) -> None:
    """Comments added, changed or cleared by a save, as one entry of their own (keyed by cell like values)."""
    changed = {
        key: v.comment
        for v in values
        if (key := _cell_key(v, own)) and (stored[key].comment if key in stored else None) != v.comment
    }
    if changed:
        before = {k: stored[k].comment if k in stored else None for k in changed}
        await append_entry(
            conn, actor, "submission.comments", f"submission:{submission.id}", before=before, after=changed, at=now
        )


def _cell_key(cell: CellValue, own_unit: str) -> str:
    return f"{cell.unit_code or own_unit}|{cell.indicator_code}|{cell.dims}"


async def validate(conn: asyncpg.Connection | asyncpg.Pool, submission_id: int) -> list[Problem]:
    submission = await fetch_submission(conn, submission_id)
    if submission is None:
        raise NotFound(f"there is no submission {submission_id}")
    return await validate_values(conn, submission)


async def submit(conn: asyncpg.Connection, actor: Actor, submission_id: int, *, now: datetime) -> Submission:
    """Record submitted_at from the server clock; a submitted report is immutable."""
    draft = await _own_draft(conn, actor, submission_id)
    await _require_unlocked(conn, draft, now)
    return await _submit(conn, actor, draft, now)


async def _submit(conn: asyncpg.Connection, actor: Actor, draft: Submission, now: datetime) -> Submission:
    problems = await validate_values(conn, draft)
    errors = [p for p in problems if p.severity == "ERROR"]
    if errors:
        listed = "; ".join(f"{p.indicator_code}[{p.dims or 'total'}]: {p.message}" for p in errors[:20])
        raise BadUserInput(f"the report has {len(errors)} error(s): {listed}")
    # A breached WARNING rule needs a written explanation, kept with the version (migration 0015).
    explanations = await settle_explanations(conn, draft, problems)
    row = await conn.fetchrow(
        f"UPDATE submission SET status = 'SUBMITTED', submitted_at = $2, on_time = ($2 <= deadline), submitted_by = $3"
        f" WHERE id = $1 AND status = 'DRAFT' RETURNING {SUBMISSION_COLUMNS}",
        draft.id,
        now,
        actor_name(actor),
    )
    if row is None:
        raise Conflict("the report was submitted by another request")
    done = Submission(**row)
    await append_entry(
        conn,
        actor,
        "submission.submit",
        f"submission:{draft.id}",
        after={
            "submitted_at": now,
            "on_time": done.on_time,
            **({"explanations": explanations} if explanations else {}),
        },
        at=now,
    )
    await notify(conn, "submission.submitted", done)
    return done


async def accept(
    conn: asyncpg.Connection, actor: Actor, submission: Submission, *, publishes: bool, now: datetime
) -> tuple[Submission, list[int]]:
    """The last approval level accepts: the version is ACCEPTED, superseding the accepted version it
    corrects, and (``publishes``) its values become current observations; the revisions made.

    resolvers/approvals.py decides who may accept, at which level; this is what accepting does.
    """
    superseded = await conn.fetchval(
        "UPDATE submission SET status = 'SUPERSEDED' WHERE regime_code = $1 AND agency_code = $2"
        " AND unit_id = $3 AND period = $4 AND status = 'ACCEPTED' RETURNING id",
        submission.regime_code,
        submission.agency_code,
        submission.unit_id,
        submission.period,
    )
    accepted = Submission(
        **await conn.fetchrow(
            f"UPDATE submission SET status = 'ACCEPTED', reviewed_at = $2, reviewed_by = $3, return_reason = NULL"
            f" WHERE id = $1 RETURNING {SUBMISSION_COLUMNS}",
            submission.id,
            now,
            actor_name(actor),
        )
    )
    revisions = await publish(conn, actor, accepted, now) if publishes else []
    await append_entry(
        conn,
        actor,
        "submission.accept",
        f"submission:{submission.id}",
        after={
            "revisions": revisions,
            "revision_digest": await revision_digest(conn, revisions),
            "supersedes": superseded,
        },
        at=now,
    )
    await notify(conn, "submission.accepted", accepted)
    return accepted, revisions


async def return_to_reporter(
    conn: asyncpg.Connection, actor: Actor, submission: Submission, reason: str, *, now: datetime
) -> Submission:
    """The first approval level returns the report: RETURNED, with the reason; ``reopen`` opens its next version."""
    returned = Submission(
        **await conn.fetchrow(
            f"UPDATE submission SET status = 'RETURNED', reviewed_at = $2, reviewed_by = $3, return_reason = $4"
            f" WHERE id = $1 RETURNING {SUBMISSION_COLUMNS}",
            submission.id,
            now,
            actor_name(actor),
            reason,
        )
    )
    await append_entry(
        conn, actor, "submission.return", f"submission:{submission.id}", after={"reason": reason}, at=now
    )
    await notify(conn, "submission.returned", returned)
    return returned


async def reopen(conn: asyncpg.Connection, actor: Actor, returned: Submission, *, now: datetime) -> Submission:
    """The next version of a returned report: a draft holding its values, same deadline."""
    created = await _next_version(conn, actor, returned, returned.correction_reason, now)
    await append_entry(
        conn,
        actor,
        "submission.reopen",
        f"submission:{created.id}",
        after={"previous": returned.id, "version": created.version},
        at=now,
    )
    return created


async def _next_version(
    conn: asyncpg.Connection, actor: Actor, of: Submission, correction_reason: str | None, now: datetime
) -> Submission:
    """A draft of the report's next version, holding the cells of version ``of``, same deadline."""
    created = Submission(
        **await conn.fetchrow(
            _INSERT,
            of.regime_code,
            of.agency_code,
            of.unit_id,
            of.period,
            of.version + 1,
            now,
            actor_name(actor),
            of.deadline,
            correction_reason,
        )
    )
    await conn.execute(
        "INSERT INTO submission_value (submission_id, indicator_code, unit_id, dims, value, comment, consolidated_from)"
        " SELECT $1, indicator_code, unit_id, dims, value, comment, consolidated_from FROM submission_value"
        " WHERE submission_id = $2",
        created.id,
        of.id,
    )
    return created


async def publish(conn: asyncpg.Connection, actor: Actor, submission: Submission, now: datetime) -> list[int]:
    """The version's values as new observation revisions, superseding any current value of each key.

    A correction publishes only the cells whose current value it changes: the others are already
    the current values, from the version it corrects.
    """
    # Serialise acceptances per key (indicator, unit, period, cell), in key order so two reports
    # never deadlock: a concurrent acceptance of the same figure waits, then (a new statement, a new
    # snapshot) supersedes this one's revision instead of colliding with it, first values included.
    await conn.execute(
        """
        SELECT pg_advisory_xact_lock(hashtextextended(indicator_code || '|' || unit_id || '|' || $2 || '|' || dims, 0))
        FROM (SELECT indicator_code, unit_id, dims FROM submission_value WHERE submission_id = $1
              ORDER BY indicator_code, unit_id, dims) AS keys
        """,
        submission.id,
        submission.period,
    )
    rows = await conn.fetch(
        """
        INSERT INTO observation_revision (indicator_code, unit_id, period, dims, value, status, submission_id,
                                          previous_id, recorded_at, recorded_by, reason)
        SELECT v.indicator_code, v.unit_id, $2, v.dims, v.value, r.observation_status, v.submission_id,
               c.revision_id, $3, $4,
               CASE WHEN c.revision_id IS NOT NULL
                    THEN coalesce('correction: ' || s.correction_reason,
                                  'superseded by accepted submission ' || v.submission_id) END
        FROM submission_value v
        JOIN submission s ON s.id = v.submission_id
        JOIN regime r ON r.code = s.regime_code
        LEFT JOIN observation_current c ON c.indicator_code = v.indicator_code AND c.unit_id = v.unit_id
                                       AND c.period = $2 AND c.dims = v.dims
        WHERE v.submission_id = $1
          AND (s.correction_reason IS NULL OR c.value IS DISTINCT FROM v.value OR c.status <> r.observation_status)
        ORDER BY v.indicator_code, v.dims
        RETURNING id
        """,
        submission.id,
        submission.period,
        now,
        actor_name(actor),
    )
    return [r["id"] for r in rows]


async def correct_value(
    conn: asyncpg.Connection,
    actor: Actor,
    submission_id: int,
    cells: Sequence[CellValue],
    reason: str,
    *,
    now: datetime,
) -> Submission:
    """A correction of an accepted report: its next version, holding the corrected cells, submitted.

    The correction is confined like any draft (its form's cells, its units, each cell once) and
    becomes current only when the receiving agency accepts it, as the first version did; until
    then the accepted figures stay current. Its reason goes with every revision it publishes.
    """
    if not reason.strip():
        raise BadUserInput("a correction needs a reason")
    row = await conn.fetchrow(SELECT_FOR_UPDATE, submission_id)
    if row is None:
        raise NotFound(f"there is no submission {submission_id}")
    accepted = Submission(**row)
    if accepted.agency_code != actor.agency:
        raise Forbidden("you may correct only your own agency's reports")
    if accepted.status != "ACCEPTED":
        raise Conflict(
            f"the report is {accepted.status.lower()}; only an accepted report's current version is corrected"
        )
    latest = (await _versions(conn, accepted.regime_code, accepted.agency_code, accepted.unit_id, accepted.period))[0]
    if latest.id != accepted.id:
        raise Conflict(f"version {latest.version} of this report is {latest.status.lower()}; finish it first")
    await _require_unlocked(conn, accepted, now)
    units, problems = await _confine(conn, accepted, cells)
    if problems:
        listed = "; ".join(f"{p.indicator_code}[{p.dims or 'total'}]: {p.message}" for p in problems[:20])
        raise BadUserInput(f"the correction has {len(problems)} error(s): {listed}")
    draft = await _next_version(conn, actor, accepted, reason, now)
    await append_entry(
        conn,
        actor,
        "submission.correct",
        f"submission:{draft.id}",
        after={"corrects": accepted.id, "version": draft.version, "reason": reason},
        at=now,
    )
    if not await _store(conn, actor, draft, cells, units, now):
        raise BadUserInput("the correction changes no figure of the accepted report")
    return await _submit(conn, actor, draft, now)


async def _own_draft(conn: asyncpg.Connection, actor: Actor, submission_id: int) -> Submission:
    row = await conn.fetchrow(SELECT_FOR_UPDATE, submission_id)
    if row is None:
        raise NotFound(f"there is no submission {submission_id}")
    submission = Submission(**row)
    if submission.agency_code != actor.agency:
        raise Forbidden("you may act only for your own agency's reports")
    if submission.status != "DRAFT":
        raise Conflict(f"the report is {submission.status.lower()}; a submitted report cannot change")
    return submission


async def _require_unlocked(conn: asyncpg.Connection, submission: Submission, now: datetime) -> None:
    await require_unlocked(
        conn, submission.regime_code, submission.agency_code, submission.period, submission.deadline, now
    )


async def notify(conn: asyncpg.Connection, kind: str, submission: Submission) -> None:
    # Keys only: listeners read the rest under their own grants (issue: live updates).
    payload = (
        f'{{"type":"{kind}","submission":{submission.id},"regime":"{submission.regime_code}",'
        f'"period":"{submission.period}","agency":"{submission.agency_code}","unit":{submission.unit_id}}}'
    )
    await conn.execute("SELECT pg_notify($1, $2)", EVENT_CHANNEL, payload)
