"""Follow-up marks: the receiving agency flags a submitted figure for follow-up, with a note, and clears it.

A mark is appended, never changed (migration 0017); a cell's latest mark is its state. Only the
regime's receiving agency marks, only cells of a version that was submitted (a draft is still the
reporter's to change), and each mark is audited with the cell it concerns, keyed as values are, so
the trail shows it only to those who may read that cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput, Conflict, Forbidden, NotFound
from nrhub.resolvers.submissions import Submission, actor_name, fetch_submission

NOTE_LONGEST = 2000


@dataclass(frozen=True, slots=True)
class FollowUp:
    follow_up: bool
    note: str
    marked_by: str
    marked_at: datetime


_LATEST = """
SELECT DISTINCT ON (f.indicator_code, f.unit_id, f.dims) u.code AS unit_code, f.indicator_code, f.dims,
       f.follow_up, f.note, f.marked_by, f.marked_at
FROM value_follow_up f JOIN admin_unit u ON u.id = f.unit_id
WHERE f.submission_id = $1
ORDER BY f.indicator_code, f.unit_id, f.dims, f.id DESC
"""


async def latest_marks(db: asyncpg.Pool | asyncpg.Connection, submission_id: int) -> dict[str, FollowUp]:
    """Each marked cell's latest mark, by cell key (``unit|indicator|dims``)."""
    return {
        f"{r['unit_code']}|{r['indicator_code']}|{r['dims']}": FollowUp(
            r["follow_up"], r["note"], r["marked_by"], r["marked_at"]
        )
        for r in await db.fetch(_LATEST, submission_id)
    }


async def mark(
    conn: asyncpg.Connection,
    actor: Actor,
    submission_id: int,
    *,
    indicator: str,
    dims: str,
    unit_code: str | None,
    follow_up: bool,
    note: str,
    now: datetime,
) -> Submission:
    """Mark (or clear) one cell of a submitted version for follow-up, audited."""
    submission = await fetch_submission(conn, submission_id)
    if submission is None:
        raise NotFound(f"there is no submission {submission_id}")
    receiving = await conn.fetchval("SELECT receiving_agency FROM regime WHERE code = $1", submission.regime_code)
    if actor.agency != receiving:
        raise Forbidden(f"only the receiving agency ({receiving}) marks {submission.regime_code} figures for follow-up")
    if submission.status == "DRAFT":
        raise Conflict("a draft is still its reporter's to change: mark figures once it is submitted")
    if not note.strip() or len(note) > NOTE_LONGEST:
        raise BadUserInput(f"a follow-up mark needs a note of 1 to {NOTE_LONGEST:,} characters")
    cell = await conn.fetchrow(
        "SELECT v.unit_id, u.code FROM submission_value v JOIN admin_unit u ON u.id = v.unit_id"
        " WHERE v.submission_id = $1 AND v.indicator_code = $2 AND v.dims = $3"
        " AND (u.code = $4 OR ($4::text IS NULL AND v.unit_id = $5))",
        submission_id,
        indicator,
        dims,
        unit_code,
        submission.unit_id,
    )
    if cell is None:
        where = f" of unit {unit_code}" if unit_code else ""
        raise NotFound(f"the report has no cell {indicator}[{dims or 'total'}]{where}")
    await conn.execute(
        "INSERT INTO value_follow_up (submission_id, indicator_code, unit_id, dims, follow_up, note, marked_by,"
        " marked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        submission_id,
        indicator,
        cell["unit_id"],
        dims,
        follow_up,
        note.strip(),
        actor_name(actor),
        now,
    )
    key = f"{cell['code']}|{indicator}|{dims}"
    await append_entry(
        conn,
        actor,
        "submission.follow_up",
        f"submission:{submission_id}",
        after={key: {"follow_up": follow_up, "note": note.strip()}},
        at=now,
    )
    return submission
