"""The authorization endpoint for people (RFC 6749 section 4.1, PKCE per RFC 7636, S256 only).

GET shows one page: who asks (the client and its agency), the scopes asked for, and a sign-in form
with "Allow" and "Deny". POST signs the person in and, on "Allow", redirects back with a code.
Until the client and its exact redirect URI are known good, errors are shown here, never
redirected (section 4.1.2.1), so the endpoint cannot be used as an open redirector.

Password guessing is limited per account and per address: an attempt is counted before the password
is hashed, and taken back when the password was right, so only failures add up. Past a limit the
form answers 429 without hashing anything. A form past HUB_MAX_BODY_BYTES (auth.body_limit) is
answered 413 on the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import asyncpg
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from nrhub.auth.address import Network, request_address
from nrhub.auth.body_limit import BodyTooLarge
from nrhub.auth.codes import insert_code
from nrhub.auth.http_status import status_for
from nrhub.auth.ratelimit import RateLimiter
from nrhub.auth.scopes import ScopeError, beyond, intersect, parse_scope
from nrhub.auth.users import authenticate_user

# Failed sign-ins allowed in a window: few per account (a person mistypes a few times, a guesser
# needs many); more per address, where an office's people share one address.
SIGN_IN_WINDOW_SECONDS = 300
SIGN_IN_FAILURES_PER_ACCOUNT = 5
SIGN_IN_FAILURES_PER_ADDRESS = 20

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


class _ShowError(Exception):
    """An error shown on the page because redirecting would be unsafe."""


class _RedirectError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class _Request:
    client_id: str
    client_name: str
    agency: str
    redirect_uri: str
    scope: list[str]  # empty: whatever the client and the person are both granted
    client_scopes: tuple[str, ...]
    state: str | None
    code_challenge: str


class AuthorizationEndpoint:
    def __init__(self, pool: asyncpg.Pool, issuer: str, proxies: Sequence[Network] = ()) -> None:
        self._pool = pool
        self._issuer = issuer
        self._proxies = proxies
        self._limiter = RateLimiter(pool, window_seconds=SIGN_IN_WINDOW_SECONDS)

    async def handle(self, request: Request) -> Response:
        try:
            params = dict(request.query_params) if request.method == "GET" else dict(await request.form())
        except BodyTooLarge as exc:
            return _page(
                f"<h1>The sign-in form is too large</h1><p>{html.escape(exc.description)}</p>", status_for(exc)
            )
        try:
            auth = await self._validate(params)
        except _ShowError as exc:
            return _page(f"<h1>This sign-in link is not valid</h1><p>{html.escape(str(exc))}</p>", 400)
        except _RedirectError as exc:
            return self._redirect(
                params["redirect_uri"], params.get("state"), error=exc.error, error_description=exc.description
            )
        if request.method == "GET":
            return _page(_consent_form(auth, params))
        if params.get("decision") != "allow":
            return self._redirect(
                auth.redirect_uri, auth.state, error="access_denied", error_description="the person declined"
            )
        username = str(params.get("username", ""))
        counted = await self._limiter.hit(
            {
                f"signin:user:{username[:64]}": SIGN_IN_FAILURES_PER_ACCOUNT,
                f"signin:addr:{request_address(request, self._proxies)}": SIGN_IN_FAILURES_PER_ADDRESS,
            }
        )
        if counted.retry_after is not None:
            wait = f"Too many failed sign-ins. Try again in {counted.retry_after} seconds."
            return _page(_consent_form(auth, params, problem=wait), 429, {"Retry-After": str(counted.retry_after)})
        user = await authenticate_user(self._pool, username, str(params.get("password", "")))
        if user is None:
            return _page(_consent_form(auth, params, problem="The username or password is wrong."), 401)
        await self._limiter.forgive(counted)
        # The token carries what was asked for (or, with nothing asked, all it may), within both the
        # client's and the person's grants, keeping either's region restriction (auth.scopes).
        extra = beyond(auth.scope, user.scopes)
        problem = f"not granted to {user.username}: {' '.join(extra)}" if extra else None
        try:
            scope = intersect(auth.scope or auth.client_scopes, auth.client_scopes, user.scopes)
        except ScopeError:
            problem = f"{user.username} and this application are granted no region in common"
        if problem:
            return self._redirect(auth.redirect_uri, auth.state, error="invalid_scope", error_description=problem)
        code = await insert_code(
            self._pool,
            client_id=auth.client_id,
            username=user.username,
            redirect_uri=auth.redirect_uri,
            scope=" ".join(scope),
            code_challenge=auth.code_challenge,
        )
        return self._redirect(auth.redirect_uri, auth.state, code=code)

    async def _validate(self, params: dict) -> _Request:
        client_id = str(params.get("client_id", ""))
        row = await self._pool.fetchrow(
            "SELECT name, agency_code, scopes, redirect_uris, disabled FROM oauth_client WHERE client_id = $1",
            client_id,
        )
        if row is None or row["disabled"]:
            raise _ShowError("the application asking you to sign in is not registered")
        redirect_uri = str(params.get("redirect_uri", ""))
        # Exact string match against a registered URI: no prefix, case or port variants.
        if redirect_uri not in row["redirect_uris"]:
            raise _ShowError("the application's return address is not registered")
        if params.get("response_type") != "code":
            raise _RedirectError("unsupported_response_type", "only response_type=code is supported")
        # RFC 7636 section 4.3: a code_challenge is mandatory here, and only S256 is accepted
        # ("plain" would let an intercepted code be redeemed).
        challenge = str(params.get("code_challenge", ""))
        if params.get("code_challenge_method") != "S256" or not _CHALLENGE.match(challenge):
            raise _RedirectError("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
        scope = parse_scope(params.get("scope"))
        extra = beyond(scope, row["scopes"])
        if extra:
            raise _RedirectError("invalid_scope", f"not granted to this application: {' '.join(extra)}")
        return _Request(
            client_id,
            row["name"],
            row["agency_code"],
            redirect_uri,
            scope,
            tuple(row["scopes"]),
            params.get("state"),
            challenge,
        )

    def _redirect(self, redirect_uri: str, state: str | None, **values: str) -> Response:
        query = {**values, **({"state": state} if state else {}), "iss": self._issuer}  # iss: RFC 9207
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(
            f"{redirect_uri}{separator}{urlencode(query)}", 303, headers={"Cache-Control": "no-store"}
        )


def _consent_form(auth: _Request, params: dict, problem: str | None = None) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(str(params.get(name, "")))}">'
        for name in (
            "client_id",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
        )
    )
    asked = auth.scope or ["everything you are granted that this application may use"]
    scopes = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in asked)
    warning = f'<p role="alert"><strong>{html.escape(problem)}</strong></p>' if problem else ""
    return f"""<h1>Sign in to the national reporting hub</h1>
<p><strong>{html.escape(auth.client_name)}</strong> ({html.escape(auth.agency)}) asks to act for you with:</p>
<ul>{scopes}</ul>{warning}
<form method="post" action="/oauth/authorize">{hidden}
<p><label>Username <input name="username" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button name="decision" value="allow">Sign in and allow</button>
<button name="decision" value="deny" formnovalidate>Deny</button></p>
</form>"""


def _page(body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    head = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>'
    document = f"{head}<body>{body}</body></html>"
    return HTMLResponse(document, status, headers=_PAGE_HEADERS | (headers or {}))
