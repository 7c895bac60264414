"""Consolidation: a report assembled from the accepted reports of the units directly below its own.

A regime that ``consolidates`` another (a province's monthly report from its communes' reports)
lets its reporter fill a draft's own-unit cells from the current accepted versions of that regime's
reports, for the same period, of the units directly below the report's unit. Each form cell is
combined by its indicator's aggregation rule, as the hub aggregates stored values
(migrations/functions/aggregation.sql): SUM and LAST add up, AVERAGE is the mean rounded to the
indicator's decimals, RATIO is sum(numerator) / sum(denominator) x factor over the same reports'
components, rounded; NONE is not combined. A cell no report below holds is left as it is.

The cells are saved as the reporter's own save would save them (confined, audited, unlocked
period), then marked with the reports they came from (``submission_value.consolidated_from``): an
observation published from such a cell shows them in its provenance. A cell the reporter changes
afterwards is the reporter's own again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput, Forbidden, NotFound
from nrhub.resolvers.queryable import Queryable


@dataclass(frozen=True, slots=True)
class Consolidation:
    submission: workflow.Submission
    sources: list[int]  # the accepted reports combined
    missing: list[str]  # codes of the units below without an accepted report for the period
    cells: int  # form cells filled


# The current accepted versions of the source regime's reports of the units below the draft's unit,
# in force at the period's end; and those units without one.
_SELECT_BELOW = """
SELECT u.id AS unit_id, u.code, s.id AS submission_id
FROM admin_unit u
LEFT JOIN submission s ON s.unit_id = u.id AND s.regime_code = $2 AND s.period = $3 AND s.status = 'ACCEPTED'
WHERE u.parent_id = $1 AND u.valid_from <= period_end($3) AND (u.valid_to IS NULL OR u.valid_to >= period_end($3))
ORDER BY u.code
"""
# Each form cell of the draft's regime ($1) combined over the sources' own-unit values ($2: report
# ids, $3: their units), by the indicator's rule; a RATIO from its components' sums.
_COMBINE = """
WITH parts AS (
    SELECT v.indicator_code, v.dims, v.value, v.submission_id
    FROM submission_value v JOIN unnest($2::bigint[], $3::int[]) AS src(id, unit_id)
      ON v.submission_id = src.id AND v.unit_id = src.unit_id
), additive AS (
    SELECT p.indicator_code, p.dims,
           CASE i.aggregation WHEN 'AVERAGE' THEN round(avg(p.value), i.decimals) ELSE sum(p.value) END AS value,
           array_agg(p.submission_id ORDER BY p.submission_id) AS sources
    FROM parts p JOIN indicator i ON i.code = p.indicator_code
    WHERE i.aggregation IN ('SUM', 'LAST', 'AVERAGE')
    GROUP BY p.indicator_code, p.dims, i.aggregation, i.decimals
), rates AS (
    SELECT i.code AS indicator_code, n.dims,
           round(n.total * i.ratio_factor / d.total, i.decimals) AS value,
           (SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(n.sources || d.sources) AS x) AS sources
    FROM indicator i
    JOIN (SELECT indicator_code, dims, sum(value) AS total, array_agg(submission_id) AS sources
          FROM parts GROUP BY 1, 2) n ON n.indicator_code = i.numerator_code
    JOIN (SELECT indicator_code, dims, sum(value) AS total, array_agg(submission_id) AS sources
          FROM parts GROUP BY 1, 2) d ON d.indicator_code = i.denominator_code AND d.dims = n.dims
    WHERE i.aggregation = 'RATIO' AND d.total <> 0
)
SELECT c.indicator_code, c.dims, c.value, c.sources
FROM (SELECT * FROM additive UNION ALL SELECT * FROM rates) c
JOIN regime_item f ON f.regime_code = $1 AND f.indicator_code = c.indicator_code AND f.dims = c.dims
ORDER BY c.indicator_code, c.dims
"""
_MARK = """
UPDATE submission_value v SET consolidated_from = m.sources
FROM (SELECT indicator_code, dims, string_to_array(sources, ',')::bigint[] AS sources
      FROM unnest($3::text[], $4::text[], $5::text[]) AS t(indicator_code, dims, sources)) m
WHERE v.submission_id = $1 AND v.unit_id = $2 AND v.indicator_code = m.indicator_code AND v.dims = m.dims
"""


async def consolidate(conn: asyncpg.Connection, actor: Actor, submission_id: int, *, now: datetime) -> Consolidation:
    """Fill the actor's draft from the accepted reports below it (see the module's docstring)."""
    draft = await workflow.fetch_submission(conn, submission_id)
    if draft is None:
        raise NotFound(f"there is no submission {submission_id}")
    if draft.agency_code != actor.agency:
        raise Forbidden("you may consolidate only your own agency's reports")
    source_regime = await conn.fetchval("SELECT consolidates FROM regime WHERE code = $1", draft.regime_code)
    if source_regime is None:
        raise BadUserInput(f"regime {draft.regime_code} is not consolidated from another regime's reports")
    below = await conn.fetch(_SELECT_BELOW, draft.unit_id, source_regime, draft.period)
    found = [r for r in below if r["submission_id"] is not None]
    missing = [r["code"] for r in below if r["submission_id"] is None]
    if not found:
        raise BadUserInput(f"no unit below the report's has an accepted {source_regime} report for {draft.period}")
    ids, units = [r["submission_id"] for r in found], [r["unit_id"] for r in found]
    combined = await conn.fetch(_COMBINE, draft.regime_code, ids, units)
    cells = [workflow.CellValue(r["indicator_code"], r["dims"], r["value"]) for r in combined]
    # The reporter's own save: its draft, an open period, the form's cells; then marked as consolidated.
    saved, problems = await workflow.save_values(conn, actor, draft.id, cells, now=now)
    if problems:
        listed = "; ".join(f"{p.indicator_code}[{p.dims or 'total'}]: {p.message}" for p in problems[:20])
        raise BadUserInput(f"the consolidated cells do not fit the report: {listed}")
    await conn.execute(
        _MARK,
        draft.id,
        draft.unit_id,
        [r["indicator_code"] for r in combined],
        [r["dims"] for r in combined],
        [",".join(str(s) for s in r["sources"]) for r in combined],
    )
    await append_entry(
        conn,
        actor,
        "submission.consolidate",
        f"submission:{draft.id}",
        after={"regime": source_regime, "sources": ids, "missing": missing, "cells": len(cells)},
        at=now,
    )
    return Consolidation(saved, ids, missing, len(cells))


_SELECT_SOURCES_OF_REVISIONS = """
SELECT r.id, v.consolidated_from FROM observation_revision r
JOIN submission_value v ON v.submission_id = r.submission_id AND v.indicator_code = r.indicator_code
                       AND v.unit_id = r.unit_id AND v.dims = r.dims
WHERE r.id = ANY($1::bigint[])
"""


async def fetch_consolidated_from(db: Queryable, revision_ids: Sequence[int]) -> list[list[int] | None]:
    """For each revision, the reports below its value was consolidated from; None for a value entered."""
    found = {r["id"]: r["consolidated_from"] for r in await db.fetch(_SELECT_SOURCES_OF_REVISIONS, list(revision_ids))}
    return [found.get(i) for i in revision_ids]
