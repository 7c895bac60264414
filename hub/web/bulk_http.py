"""``PUT /reports/{id}/values``: fill your agency's draft from a CSV or SDMX-CSV file (see resolvers.bulk).

All or nothing: one bad row and no cell is saved, and every bad row is listed (422). The
``Idempotency-Key`` header is required, as for every change; the key covers the file's digest.
The file is limited as every body is (HUB_MAX_BODY_BYTES, auth.body_limit); errors take their
status from the one table (auth.http_status).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nrhub.auth.body_limit import BodyTooLarge
from nrhub.auth.http_status import status_for
from nrhub.auth.resource import Unauthorized
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.audit import Actor
from nrhub.resolvers.bulk import parse_cells
from nrhub.resolvers.errors import BadUserInput, Forbidden, HubError, NotFound
from nrhub.resolvers.idempotency import idempotent
from nrhub.web.request_id import request_id_of

MEDIA_TYPES = ("text/csv", "application/vnd.sdmx.data+csv")
_MAX_ID = 2**63 - 1  # submission ids are bigint; a larger number in the path names nothing


async def upload_values(request: Request) -> Response:
    state = request.state.hub
    try:
        principal = await state.authenticator.principal(request.headers.get("authorization"))
    except Unauthorized as exc:
        return _error(exc, exc.description, {"WWW-Authenticate": exc.challenge})
    if not principal.has_scope("reports:submit") or principal.agency_code is None or principal.client_id is None:
        return _refuse(Forbidden("uploading values needs the reports:submit scope of an agency's client"))
    # Whose report it is, before anything is read of it or of the file (whose errors would quote its
    # period): another agency's report is answered exactly as one that does not exist.
    submission_id = int(request.path_params["submission_id"])
    submission = await workflow.fetch_submission(state.pool, submission_id) if submission_id <= _MAX_ID else None
    if submission is None or submission.agency_code != principal.agency_code:
        return _refuse(NotFound(f"there is no submission {submission_id}"))
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:  # HTTP's Unsupported Media Type, not an error of the hub's table
        return _payload(415, "BAD_USER_INPUT", f"send {' or '.join(MEDIA_TYPES)}")
    key = request.headers.get("idempotency-key", "")
    try:
        body = await request.body()
    except BodyTooLarge as exc:
        return _error(exc, exc.description)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _refuse(BadUserInput("the file is not UTF-8"))
    cells, problems = parse_cells(text, media_type, submission.period)
    if problems:
        return JSONResponse({"saved": 0, "errors": [{"row": p.row, "message": p.message} for p in problems]}, 422)
    actor = Actor(principal.agency_code, principal.client_id, principal.user, request_id_of(request.scope))
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
        return _refuse(exc)
    if result["problems"]:
        rows = _rows_of(cells)
        errors = [
            {"row": rows.get((i, d), 0), "message": f"{i}[{d or 'total'}]: {m}"} for i, d, m in result["problems"]
        ]
        return JSONResponse({"saved": 0, "errors": errors}, 422)
    return JSONResponse({"submission": submission_id, "saved": result["saved"]})


def _rows_of(cells: list[workflow.CellValue]) -> dict[tuple[str, str], int]:
    rows: dict[tuple[str, str], int] = {}
    for line, cell in enumerate(cells, start=2):
        rows.setdefault((cell.indicator_code, cell.dims), line)
    return rows


def _refuse(error: HubError) -> JSONResponse:
    return _error(error, error.message)


def _error(
    error: HubError | Unauthorized | BodyTooLarge, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The upload's error format; the status from the one table, the code from the fixed set."""
    code = "BAD_USER_INPUT" if isinstance(error, BodyTooLarge) else error.code
    return _payload(status_for(error), code, message, headers)


def _payload(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers=headers)
