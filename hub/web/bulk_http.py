"""``PUT /reports/{id}/values``: fill your agency's draft from a CSV or SDMX-CSV file (see resolvers.bulk).

All or nothing: one bad row and no cell is saved, and every problem of the file is listed on its
row, in one pass (422). ``?dryRun=true`` answers the same and saves nothing, whatever the file. The
``Idempotency-Key`` header is required, as for every change (a dry run changes nothing and needs
none); the key covers the file's digest.
The file is limited as every body is (HUB_MAX_BODY_BYTES, auth.body_limit); errors take their
status from the one table (auth.http_status).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nrhub.auth.body_limit import BodyTooLarge
from nrhub.auth.http_status import status_for
from nrhub.auth.resource import Unauthorized
from nrhub.resolvers import submissions as workflow
from nrhub.resolvers.audit import Actor
from nrhub.resolvers.bulk import Checked, RowProblem, check_and_store, parse_cells
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
    dry_run = request.query_params.get("dryRun", "false")
    if dry_run not in ("true", "false"):
        return _refuse(BadUserInput("dryRun is true or false"))
    parsed = parse_cells(text, media_type, submission.period)
    actor = Actor(principal.agency_code, principal.client_id, principal.user, request_id_of(request.scope))
    now = getattr(request.app.state, "clock", lambda: datetime.now(UTC))()

    async def change(conn: Any) -> dict[str, Any]:
        checked = await check_and_store(conn, actor, submission, parsed, now=now, validate=dry_run == "true")
        if checked.errors or dry_run == "true":
            raise _NotSaved(checked)  # rolls the transaction back: nothing of the file stays
        return {"submission": submission_id, "saved": checked.saved}

    if dry_run == "true":
        # Its transaction always rolls back, so its key is never recorded: a fresh one, so that a
        # dry run neither waits on nor replays an upload.
        key = str(uuid.uuid4())
    request_digest = {"submission": submission_id, "file": hashlib.sha256(body).hexdigest(), "type": media_type}
    try:
        result = await idempotent(state.pool, principal.client_id, key, "uploadValues", request_digest, change)
    except _NotSaved as stopped:
        return _not_saved(submission_id, stopped.checked, dry_run == "true")
    except HubError as exc:
        return _refuse(exc)
    return JSONResponse(result)


class _NotSaved(Exception):
    def __init__(self, checked: Checked) -> None:
        self.checked = checked


def _not_saved(submission_id: int, checked: Checked, dry_run: bool) -> JSONResponse:
    """422 when the file would not be saved; a dry run of a good file says what would be."""
    answer: dict[str, Any] = {"submission": submission_id, "saved": 0}
    if dry_run:
        answer |= {"dryRun": True, "wouldSave": checked.saved, "message": "dry run: nothing was saved"}
    if checked.errors:
        answer["errors"] = _rows(checked.errors)
    answer["problems"] = _rows(checked.problems)
    return JSONResponse(answer, 422 if checked.errors else 200)


def _rows(problems: list[RowProblem]) -> list[dict[str, Any]]:
    return [{"row": p.row, "message": p.message, "severity": p.severity} for p in problems]


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
