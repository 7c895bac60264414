"""Bulk entry: a draft's cells from CSV or SDMX-CSV text, with every problem of the file on its row.

CSV (``text/csv``), one cell per row, header required:

    indicator,disaggregation,value[,unit]
    RETAIL,,15234.50
    UNEMPLOYED,SEX=F,1200,79001

SDMX-CSV (``application/vnd.sdmx.data+csv``): ``DATAFLOW`` first, then ``INDICATOR``, ``REF_AREA``,
``TIME_PERIOD``, any disaggregation dimensions (``SEX``, ``URBANISATION``, ...; ``_T`` for a total)
and ``OBS_VALUE``. ``TIME_PERIOD`` must be the report's period.

A row is named by its line in the file as a text editor numbers it, the header being line 1 (blank
lines count; a quoted value that spans lines is named by its first line). One pass finds every
problem: rows that do not parse, cells given twice, cells outside the form or the report's units
(these stop the file), and what validation will say of the file's cells (resolvers/validation.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import asyncpg

from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.audit import Actor
from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.exact import parse_figure
from nrhub.resolvers.submissions import CellValue, Submission
from nrhub.resolvers.validation import Problem, validate_values

MAX_ROWS = 200_000
_CSV_HEADER = ("indicator", "disaggregation", "value")
_SDMX_FIXED = {"DATAFLOW", "INDICATOR", "REF_AREA", "TIME_PERIOD", "OBS_VALUE", "OBS_STATUS", "UNIT_MULT"}


@dataclass(frozen=True, slots=True, order=True)
class RowProblem:
    row: int  # 1-based line number in the file, header included
    message: str
    severity: str = "ERROR"


@dataclass(frozen=True, slots=True)
class Parsed:
    cells: list[CellValue] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # the line each cell starts on
    problems: list[RowProblem] = field(default_factory=list)


def parse_cells(text: str, media_type: str, period: str) -> Parsed:
    # newline="": csv reads line breaks itself (\r\n, \n or \r), and line_num counts them.
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return Parsed(problems=[RowProblem(1, "the file is empty")])
    header = [h.strip() for h in header]
    sdmx = media_type == "application/vnd.sdmx.data+csv"
    if sdmx and (not header or header[0] != "DATAFLOW" or not {"INDICATOR", "OBS_VALUE"} <= set(header)):
        return Parsed(problems=[RowProblem(1, "SDMX-CSV needs DATAFLOW first, and INDICATOR and OBS_VALUE columns")])
    if not sdmx and tuple(header[:3]) != _CSV_HEADER:
        wanted = "the header must start indicator,disaggregation,value (optionally ,unit)"
        return Parsed(problems=[RowProblem(1, wanted)])
    cells: list[CellValue] = []
    rows: list[int] = []
    problems: list[RowProblem] = []
    cell = _sdmx_cell if sdmx else _csv_cell
    line, records = reader.line_num + 1, 0
    for row in reader:
        first, line = line, reader.line_num + 1  # the line this record starts on; the next one's
        if not row or all(not c.strip() for c in row):
            continue
        records += 1
        if records > MAX_ROWS:
            problems.append(RowProblem(first, f"a file may hold at most {MAX_ROWS} rows"))
            break
        if len(row) != len(header):
            problems.append(RowProblem(first, f"{len(row)} columns where the header has {len(header)}"))
            continue
        try:
            cells.append(cell(dict(zip(header, (c.strip() for c in row), strict=True)), period))
        except ValueError as exc:
            problems.append(RowProblem(first, str(exc)))
        else:
            rows.append(first)
    return Parsed(cells, rows, problems)


@dataclass(frozen=True, slots=True)
class Checked:
    saved: int  # cells stored; 0 when an error stops the file
    errors: list[RowProblem]  # what stops the file: nothing of it may be kept
    problems: list[RowProblem]  # what validation says of the file's cells (ERROR blocks submission)


async def check_and_store(
    conn: asyncpg.Connection,
    actor: Actor,
    submission: Submission,
    parsed: Parsed,
    *,
    now: datetime,
    validate: bool = False,
) -> Checked:
    """Store the file's cells in the caller's transaction and name every problem of the file on its
    row. The caller rolls the transaction back when there are errors, or for a dry run.

    Validation's problems are found when ``validate`` is set, or when the file has errors: a file
    that is refused, or checked by a dry run, is answered with everything wrong with it at once. A
    good file's upload skips them (3 s of 20,000 cells' 5 s): the report's own check lists them.
    """
    own = await conn.fetchval("SELECT code FROM admin_unit WHERE id = $1", submission.unit_id)
    cells, errors = _once_each(parsed, own)
    if not cells:
        return Checked(0, sorted(errors), [])
    # The workflow's own check decides which cells the report may hold (its form, its units); it
    # stores nothing when it refuses any.
    stored = cells
    _, refused = await workflow.save_values(conn, actor, submission.id, [c for _, c in cells], now=now)
    if refused:
        errors += await _refused_rows(conn, actor, submission, refused, cells, own, now)
        bad = {e.row for e in errors}
        stored = [(row, c) for row, c in cells if row not in bad]
        _, left = await workflow.save_values(conn, actor, submission.id, [c for _, c in stored], now=now)
        errors += _on_rows(left, stored, own)  # none: each cell left was accepted above
    problems = _on_rows(await validate_values(conn, submission), stored, own) if validate or errors else []
    return Checked(0 if errors else len(stored), sorted(errors), sorted(problems))


Row = tuple[int, CellValue]


def _unit(cell: CellValue, own: str) -> str:
    return cell.unit_code or own


def _once_each(parsed: Parsed, own: str) -> tuple[list[Row], list[RowProblem]]:
    """The file's cells, each once; a cell the file gives again is an error on that later row."""
    first: dict[tuple[str, str, str], int] = {}
    cells, errors = [], list(parsed.problems)
    for row, cell in zip(parsed.rows, parsed.cells, strict=True):
        key = (_unit(cell, own), cell.indicator_code, cell.dims)
        if key in first:
            errors.append(RowProblem(row, f"{_cell(cell, own)}: given again (first on row {first[key]})"))
        else:
            first[key] = row
            cells.append((row, cell))
    return cells, errors


async def _refused_rows(
    conn: asyncpg.Connection,
    actor: Actor,
    submission: Submission,
    refused: list[Problem],
    cells: list[Row],
    own: str,
    now: datetime,
) -> list[RowProblem]:
    """The rows of the cells the workflow refused.

    Its problems name a cell's indicator and disaggregation but not its unit, so where the file
    holds cells of several units, the cells concerned are checked again unit by unit, in a
    savepoint rolled back, to put every problem on its own row.
    """
    units = sorted({_unit(c, own) for _, c in cells})
    if len(units) == 1:
        return _on_rows(refused, cells, own, unit=units[0])
    named = {(p.indicator_code, p.dims) for p in refused}
    concerned = [(row, c) for row, c in cells if (c.indicator_code, c.dims) in named]
    rows = []
    for unit in sorted({_unit(c, own) for _, c in concerned}):
        alone = [(row, c) for row, c in concerned if _unit(c, own) == unit]
        probe = conn.transaction()
        await probe.start()
        try:
            _, problems = await workflow.save_values(conn, actor, submission.id, [c for _, c in alone], now=now)
        finally:
            await probe.rollback()
        rows += _on_rows(problems, alone, own, unit=unit)
    return rows


def _on_rows(problems: list[Problem], cells: list[Row], own: str, unit: str | None = None) -> list[RowProblem]:
    """Each problem on the row of the cell it concerns (of ``unit`` when all the cells are of one);
    a problem of no cell of the file (a required cell it does not give) is not the file's, and is
    left to the report's own check."""
    rows = {(_unit(c, own), c.indicator_code, c.dims): row for row, c in cells}
    below = {c.unit_code for _, c in cells if c.unit_code and c.unit_code != own}
    found = []
    for p in problems:
        # Validation names a unit below the report's own at the head of the message (resolvers/validation.py).
        where = unit or next((u for u in below if p.message.startswith(f"unit {u}: ")), own)
        keys = [(where, p.indicator_code, p.dims), *((where, i, "") for i in p.indicators)]
        row = next((rows[k] for k in keys if k in rows), None)
        if row is not None:
            found.append(RowProblem(row, f"{p.indicator_code}[{p.dims or 'total'}]: {p.message}", p.severity))
    return found


def _cell(cell: CellValue, own: str) -> str:
    where = f" of unit {cell.unit_code}" if cell.unit_code and cell.unit_code != own else ""
    return f"{cell.indicator_code}[{cell.dims or 'total'}]{where}"


def _csv_cell(record: dict[str, str], period: str) -> CellValue:
    return CellValue(
        _code(record["indicator"]),
        _dims_key(record["disaggregation"]),
        _decimal(record["value"]),
        record.get("unit") or None,
    )


def _sdmx_cell(record: dict[str, str], period: str) -> CellValue:
    if record.get("TIME_PERIOD") and record["TIME_PERIOD"] != period:
        raise ValueError(f"TIME_PERIOD {record['TIME_PERIOD']} is not the report's period {period}")
    dims = "|".join(f"{k}={v}" for k, v in sorted(record.items()) if k not in _SDMX_FIXED and v and v != "_T")
    return CellValue(
        _code(record["INDICATOR"]), _dims_key(dims), _decimal(record["OBS_VALUE"]), record.get("REF_AREA") or None
    )


def _code(text: str) -> str:
    if not text or not text.replace("_", "").isalnum() or not text.isupper():
        raise ValueError(f"{text!r} is not an indicator code")
    return text


def _dims_key(text: str) -> str:
    if not text:
        return ""
    parts = sorted(p.strip() for p in text.split("|"))
    for part in parts:
        name, sep, code = part.partition("=")
        if not sep or not name.replace("_", "").isalpha() or not name.isupper() or not code.isalnum():
            raise ValueError(f"{text!r} is not a disaggregation such as SEX=F|URBANISATION=U")
    return "|".join(parts)


def _decimal(text: str) -> Decimal:
    try:
        return parse_figure(text)
    except BadUserInput as exc:
        raise ValueError(exc.message) from None
