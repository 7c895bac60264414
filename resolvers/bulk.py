"""Bulk entry: a draft's cells from CSV or SDMX-CSV text, with a problem per bad row.

CSV (``text/csv``), one cell per row, header required:

    indicator,disaggregation,value[,unit]
    RETAIL,,15234.50
    UNEMPLOYED,SEX=F,1200,79001

SDMX-CSV (``application/vnd.sdmx.data+csv``): ``DATAFLOW`` first, then ``INDICATOR``, ``REF_AREA``,
``TIME_PERIOD``, any disaggregation dimensions (``SEX``, ``URBANISATION``, ...; ``_T`` for a total)
and ``OBS_VALUE``. ``TIME_PERIOD`` must be the report's period.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal

from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.exact import parse_figure
from nrhub.resolvers.submissions import CellValue

MAX_ROWS = 200_000
_CSV_HEADER = ("indicator", "disaggregation", "value")
_SDMX_FIXED = {"DATAFLOW", "INDICATOR", "REF_AREA", "TIME_PERIOD", "OBS_VALUE", "OBS_STATUS", "UNIT_MULT"}


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int  # 1-based line number in the file, header included
    message: str


def parse_cells(text: str, media_type: str, period: str) -> tuple[list[CellValue], list[RowProblem]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return [], [RowProblem(1, "the file is empty")]
    header = [h.strip() for h in header]
    sdmx = media_type == "application/vnd.sdmx.data+csv"
    if sdmx and (not header or header[0] != "DATAFLOW" or not {"INDICATOR", "OBS_VALUE"} <= set(header)):
        return [], [RowProblem(1, "SDMX-CSV needs DATAFLOW first, and INDICATOR and OBS_VALUE columns")]
    if not sdmx and tuple(header[:3]) != _CSV_HEADER:
        return [], [RowProblem(1, "the header must start indicator,disaggregation,value (optionally ,unit)")]
    cells: list[CellValue] = []
    problems: list[RowProblem] = []
    for line, row in enumerate(reader, start=2):
        if line - 1 > MAX_ROWS:
            problems.append(RowProblem(line, f"a file may hold at most {MAX_ROWS} rows"))
            break
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            problems.append(RowProblem(line, f"{len(row)} columns where the header has {len(header)}"))
            continue
        record = dict(zip(header, (c.strip() for c in row), strict=True))
        try:
            cells.append(_sdmx_cell(record, period) if sdmx else _csv_cell(record))
        except ValueError as exc:
            problems.append(RowProblem(line, str(exc)))
    return cells, problems


def _csv_cell(record: dict[str, str]) -> CellValue:
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
