"""``PUT /reports/{id}/values``: fill your agency's draft from a CSV or SDMX-CSV file (see resolvers.bulk).

All or nothing: one bad row and no cell is saved, and every bad row is listed (422). The
``Idempotency-Key`` header is required, as for every change; the key covers the file's digest.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from auth.resource import Unauthorized
from resolvers import submissions as workflow
from resolvers.audit import Actor
from resolvers.bulk import parse_cells
from resolvers.errors import HubError
from resolvers.idempotency import idempotent

MEDIA_TYPES = ("text/csv", "application/vnd.sdmx.data+csv")
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
_MAX_ID = 2**63 - 1  # submission ids are bigint; a larger number in the path names nothing


async def upload_values(request: Request) -> Response:
    state = request.state.hub
    try:
        principal = await state.authenticator.principal(request.headers.get("authorization"))
    except Unauthorized as exc:
        return _error(401, "UNAUTHENTICATED", exc.description, {"WWW-Authenticate": exc.challenge})
    if not principal.has_scope("reports:submit") or principal.agency_code is None or principal.client_id is None:
        return _error(403, "FORBIDDEN", "uploading values needs the reports:submit scope of an agency's client")
    # Whose report it is, before anything is read of it or of the file (whose errors would quote its
    # period): another agency's report is answered exactly as one that does not exist.
    submission_id = int(request.path_params["submission_id"])
    submission = await workflow.fetch_submission(state.pool, submission_id) if submission_id <= _MAX_ID else None
    if submission is None or submission.agency_code != principal.agency_code:
        return _error(404, "NOT_FOUND", f"there is no submission {submission_id}")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        return _error(415, "BAD_USER_INPUT", f"send {' or '.join(MEDIA_TYPES)}")
    key = request.headers.get("idempotency-key", "")
    body = await _read(request)
    if body is None:
        return _error(413, "BAD_USER_INPUT", f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _error(400, "BAD_USER_INPUT", "the file is not UTF-8")
    cells, problems = parse_cells(text, media_type, submission.period)
    if problems:
        return JSONResponse({"saved": 0, "errors": [{"row": p.row, "message": p.message} for p in problems]}, 422)
    actor = Actor(principal.agency_code, principal.client_id, principal.user, request.headers.get("x-request-id"))
    now = getattr(request.app.state, "clock", lambda: datetime.now(UTC))()

    async def change(conn: Any) -> dict[str, Any]:
        _, cell_problems = await workflow.save_values(conn, actor, submission_id, cells, now=now)
        return {
            "saved": 0 if cell_problems else len(cells),
            "problems": [[p.indicator_code, p.dims, p.message] for p in cell_problems],
        }

    request_digest = {"submission": submission_id, "file": hashlib.sha256(body).hexdigest(), "type": media_type}
    try:
        result = await idempotent(state.pool, principal.client_id, key, "uploadValues", request_digest, change)
    except HubError as exc:
        status = {"FORBIDDEN": 403, "NOT_FOUND": 404, "CONFLICT": 409}.get(exc.code, 400)
        return _error(status, exc.code, exc.message)
    if result["problems"]:
        rows = _rows_of(cells)
        errors = [
            {"row": rows.get((i, d), 0), "message": f"{i}[{d or 'total'}]: {m}"} for i, d, m in result["problems"]
        ]
        return JSONResponse({"saved": 0, "errors": errors}, 422)
    return JSONResponse({"submission": submission_id, "saved": result["saved"]})


async def _read(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            return None
    return bytes(body)


def _rows_of(cells: list[workflow.CellValue]) -> dict[tuple[str, str], int]:
    rows: dict[tuple[str, str], int] = {}
    for line, cell in enumerate(cells, start=2):
        rows.setdefault((cell.indicator_code, cell.dims), line)
    return rows


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers=headers)
