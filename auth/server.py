"""The OAuth2 authorization server's endpoints (RFC 6749, 7009, 7662, 8414, 9068).

Grants: client_credentials for machines (client_secret_basic or client_secret_post). Errors are
authlib's OAuth2Error classes, which carry their own body and headers; their status comes from the
one table (auth.http_status). Bodies are limited by HUB_MAX_BODY_BYTES (auth.body_limit): a form
past it is answered 413 with an ``invalid_request`` body.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from dataclasses import dataclass, replace
from urllib.parse import unquote_plus

import asyncpg
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nrhub.auth.address import parse_proxies, request_address
from nrhub.auth.authorize import AuthorizationEndpoint
from nrhub.auth.body_limit import BodyTooLarge
from nrhub.auth.codes import Grant, access_token_id, insert_refresh, redeem_code, revoke_refresh, rotate_refresh
from nrhub.auth.http_status import STATUS_BY_CODE, status_for
from nrhub.auth.keys import ALGORITHM, KeyStore
from nrhub.auth.ratelimit import RateLimiter
from nrhub.auth.scopes import FIXED, ScopeError, beyond, intersect, parse_scope
from nrhub.auth.secrets import verified
from nrhub.auth.tokens import AccessClaims, InvalidToken, issue_access_token, verify_access_token

_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True, slots=True)
class ServerSettings:
    issuer: str
    audience: str
    token_lifetime: int
    token_rate_limit: int
    trusted_proxies: str = ""  # HUB_TRUSTED_PROXIES: whose X-Forwarded-For is believed (auth.address)


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    client_id: str
    agency_code: str
    scopes: frozenset[str]
    confidential: bool


_SELECT_CLIENT = """
SELECT client_id, secret_hash, agency_code, scopes, disabled FROM oauth_client WHERE client_id = $1
"""
# What a person's sign-in may still carry: the client's and the person's grants as they are now.
_SELECT_GRANTS = """
SELECT c.scopes AS client_scopes, u.scopes AS user_scopes, c.disabled OR u.disabled AS disabled
FROM oauth_client c, hub_user u WHERE c.client_id = $1 AND u.username = $2
"""


class AuthorizationServer:
    # path, method name, HTTP method
    ROUTES = (
        ("/oauth/authorize", "authorize", "GET"),
        ("/oauth/authorize", "authorize", "POST"),
        ("/oauth/token", "token", "POST"),
        ("/oauth/revoke", "revoke", "POST"),
        ("/oauth/introspect", "introspect", "POST"),
        ("/.well-known/oauth-authorization-server", "metadata", "GET"),
        ("/.well-known/jwks.json", "jwks", "GET"),
    )

    def __init__(self, pool: asyncpg.Pool, keys: KeyStore, settings: ServerSettings) -> None:
        self._pool = pool
        self._keys = keys
        self._settings = settings
        self._proxies = parse_proxies(settings.trusted_proxies)
        self._limiter = RateLimiter(pool)
        self._authorization = AuthorizationEndpoint(pool, settings.issuer, self._proxies)

    async def authorize(self, request: Request) -> Response:
        return await self._authorization.handle(request)

    async def token(self, request: Request) -> Response:
        try:
            form = await _form(request)
            # Per address, counted before the secret is checked (RFC 6749 10.10), so guessing costs
            # the guesser's own address its requests.
            if refused := await self._over_limit(f"token:addr:{request_address(request, self._proxies)}"):
                return refused
            grant_type = form.get("grant_type")
            # Browser clients have no secret; they may only redeem codes and refresh tokens (PKCE).
            client = await self._authenticate_client(
                request, form, allow_public=grant_type in ("authorization_code", "refresh_token")
            )
            # Per client only once it has proved who it is: failures in its name by strangers must not
            # lock it out. A public client proves nothing (anyone may name it), so it is limited per
            # address only; its grants need a person's code or refresh token, each usable once.
            if client.confidential and (refused := await self._over_limit(f"token:client:{client.client_id}")):
                return refused
            if grant_type == "client_credentials":
                if not client.confidential:
                    raise UnauthorizedClientError(description="public clients cannot use client_credentials")
                return await self._issue_for_client(client, form.get("scope"))
            if grant_type == "authorization_code":
                return await self._redeem_code(client, form)
            if grant_type == "refresh_token":
                return await self._refresh(client, form)
            raise UnsupportedGrantTypeError()
        except (OAuth2Error, BodyTooLarge) as error:
            return _error_response(error)

    async def _redeem_code(self, client: AuthenticatedClient, form: dict[str, str]) -> Response:
        verifier = form.get("code_verifier", "")
        # RFC 7636 section 4.1: 43-128 characters of the unreserved set.
        if not _VERIFIER.match(verifier):
            raise InvalidRequestError(description="code_verifier is missing or malformed")
        grant = await redeem_code(self._pool, form.get("code", ""), client.client_id)
        if grant is None:
            raise InvalidGrantError(description="the code is unknown, expired or already used")
        # RFC 6749 section 4.1.3: the same redirect_uri as in the authorization request, exactly.
        if form.get("redirect_uri") != grant.redirect_uri:
            raise InvalidGrantError(description="redirect_uri does not match the authorization request")
        # RFC 7636 section 4.6: S256(code_verifier) must equal the stored challenge.
        if not hmac.compare_digest(create_s256_code_challenge(verifier), grant.code_challenge or ""):
            raise InvalidGrantError(description="code_verifier does not match the code_challenge")
        grant = await self._current(self._pool, grant, asked=[])
        return await self._person_tokens(client, grant, await insert_refresh(self._pool, grant))

    async def _refresh(self, client: AuthenticatedClient, form: dict[str, str]) -> Response:
        asked = parse_scope(form.get("scope"))

        async def renew(conn: asyncpg.Connection, grant: Grant) -> Grant:
            # RFC 6749 section 6: nothing beyond the original grant; none asked means all of it.
            extra = beyond(asked, grant.scope.split())
            if extra:
                raise InvalidScopeError(description=f"beyond the original grant: {' '.join(extra)}")
            return await self._current(conn, grant, asked)

        rotated = await rotate_refresh(self._pool, form.get("refresh_token", ""), client.client_id, renew)
        if rotated is None:
            raise InvalidGrantError(description="the refresh token is unknown, expired, revoked or already used")
        return await self._person_tokens(client, *rotated)

    async def _current(self, db: asyncpg.Connection | asyncpg.Pool, grant: Grant, asked: list[str]) -> Grant:
        """The grant as it stands now: what the sign-in was granted (or the part asked for), within the
        client's and the person's grants of today, so that an operator's narrowing or disabling reaches
        sign-ins that keep refreshing."""
        row = await db.fetchrow(_SELECT_GRANTS, grant.client_id, grant.username)
        if row is None or row["disabled"]:
            raise InvalidGrantError(description="the account or the application is disabled")
        signed_in = grant.scope.split()
        try:
            scope = intersect(asked or signed_in, signed_in, row["client_scopes"], row["user_scopes"])
        except ScopeError:
            raise InvalidGrantError(description="the grants no longer cover this sign-in") from None
        return replace(grant, scope=" ".join(scope))

    async def _person_tokens(self, client: AuthenticatedClient, grant: Grant, refresh_token: str) -> Response:
        # The access token's jti follows from its refresh token, so revoking the family revokes it too.
        body = await self._token_body(client.client_id, grant.username, grant.scope, access_token_id(refresh_token))
        # Refresh tokens are for people only, rotated on every use.
        body["refresh_token"] = refresh_token
        return JSONResponse(body, headers=NO_STORE)

    async def _issue_for_client(self, client: AuthenticatedClient, scope_param: str | None) -> Response:
        asked = parse_scope(scope_param)
        # RFC 6749 section 3.3: a token's scopes are within what the client is granted; and asking for
        # less never lifts the client's region restriction (auth.scopes.intersect).
        extra = beyond(asked, client.scopes)
        if extra:
            raise InvalidScopeError(description=f"not granted to this client: {' '.join(extra)}")
        scope = intersect(asked or sorted(client.scopes), client.scopes)
        body = await self._token_body(client.client_id, client.client_id, " ".join(scope))
        return JSONResponse(body, headers=NO_STORE)

    async def _token_body(self, client_id: str, subject: str, scope: str, jti: str | None = None) -> dict[str, object]:
        key = await self._keys.signing_key()
        token, _ = issue_access_token(
            key,
            issuer=self._settings.issuer,
            audience=self._settings.audience,
            subject=subject,
            client_id=client_id,
            scope=scope,
            lifetime=self._settings.token_lifetime,
            now=int(time.time()),
            jti=jti,
        )
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self._settings.token_lifetime,
            "scope": scope,
        }
        return body

    async def revoke(self, request: Request) -> Response:
        """RFC 7009: always 200 for a token the client may revoke or that is unknown."""
        try:
            form = await _form(request)
            if refused := await self._over_limit(f"token:others:addr:{request_address(request, self._proxies)}"):
                return refused
            client = await self._authenticate_client(request, form, allow_public=True)
        except (OAuth2Error, BodyTooLarge) as error:
            return _error_response(error)
        token = form.get("token", "")
        claims = await self._claims(token)
        if claims is None:
            # Not an access token of ours: perhaps a refresh token (its whole family goes).
            await revoke_refresh(self._pool, token, client.client_id)
        elif claims.client_id == client.client_id:
            await self._pool.execute(
                "INSERT INTO revoked_token (jti, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING",
                claims.jti,
                claims.expires_at,
            )
        return Response(status_code=200, headers=NO_STORE)

    async def introspect(self, request: Request) -> Response:
        """RFC 7662, for registered confidential clients; reflects revocation and disabled clients."""
        try:
            form = await _form(request)
            if refused := await self._over_limit(f"token:others:addr:{request_address(request, self._proxies)}"):
                return refused
            await self._authenticate_client(request, form)
        except (OAuth2Error, BodyTooLarge) as error:
            return _error_response(error)
        claims = await self._claims(form.get("token", ""))
        if claims is None:
            return JSONResponse({"active": False}, headers=NO_STORE)
        standing = await self._pool.fetchrow(
            "SELECT (SELECT disabled FROM oauth_client WHERE client_id = $1) AS disabled,"
            " EXISTS (SELECT 1 FROM revoked_token WHERE jti = $2) AS revoked",
            claims.client_id,
            claims.jti,
        )
        if standing["disabled"] is not False or standing["revoked"]:
            return JSONResponse({"active": False}, headers=NO_STORE)
        return JSONResponse(
            {
                "active": True,
                "scope": " ".join(sorted(claims.scopes)),
                "client_id": claims.client_id,
                "sub": claims.subject,
                "exp": claims.expires_at,
                "jti": claims.jti,
                "token_type": "Bearer",
                "iss": self._settings.issuer,
                "aud": self._settings.audience,
            },
            headers=NO_STORE,
        )

    async def metadata(self, request: Request) -> Response:
        """RFC 8414 authorization server metadata."""
        issuer = self._settings.issuer
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/oauth/authorize",
                "token_endpoint": f"{issuer}/oauth/token",
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "revocation_endpoint": f"{issuer}/oauth/revoke",
                "introspection_endpoint": f"{issuer}/oauth/introspect",
                "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "authorization_response_iss_parameter_supported": True,
                "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": sorted(FIXED),
                "response_types_supported": ["code"],
                "access_token_signing_alg_values_supported": [ALGORITHM],
            }
        )

    async def jwks(self, request: Request) -> Response:
        # Read fresh: another process may have rotated a minute ago and signs with the new key already.
        keys = await self._keys.keys(refresh=True)
        if not keys.jwks()["keys"]:
            await self._keys.signing_key()  # first start: make the first key
            keys = await self._keys.keys(refresh=True)
        return JSONResponse(keys.jwks(), headers={"Cache-Control": "max-age=60"})

    async def _claims(self, token: str) -> AccessClaims | None:
        try:
            return await verify_access_token(
                token, self._keys, issuer=self._settings.issuer, audience=self._settings.audience, now=int(time.time())
            )
        except InvalidToken:
            return None

    async def _over_limit(self, bucket: str) -> Response | None:
        """A 429 once the bucket has had ``HUB_TOKEN_RATE_LIMIT`` requests this minute; each costs a hash."""
        counted = await self._limiter.hit({bucket: self._settings.token_rate_limit})
        return None if counted.retry_after is None else _slow_down(counted.retry_after)

    async def _authenticate_client(
        self, request: Request, form: dict[str, str], *, allow_public: bool = False
    ) -> AuthenticatedClient:
        client_id, secret, _ = _credentials(request, form)
        row = await self._pool.fetchrow(_SELECT_CLIENT, client_id) if client_id else None
        if allow_public and row is not None and row["secret_hash"] is None and secret is None and not row["disabled"]:
            return AuthenticatedClient(row["client_id"], row["agency_code"], frozenset(row["scopes"]), False)
        # Known and unknown ids take the same path and the same time: scrypt runs either way.
        stored = row["secret_hash"] if row else None
        ok = await verified(secret or "", stored)
        if not ok or row is None or row["disabled"]:
            raise InvalidClientError(description="client authentication failed")
        return AuthenticatedClient(row["client_id"], row["agency_code"], frozenset(row["scopes"]), True)


def _credentials(request: Request, form: dict[str, str]) -> tuple[str | None, str | None, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        if "client_secret" in form:
            raise InvalidRequestError(description="use one client authentication method, not two")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidClientError(description="malformed Basic credentials") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise InvalidClientError(description="malformed Basic credentials")
        # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
        return unquote_plus(client_id), unquote_plus(secret), "client_secret_basic"
    return form.get("client_id"), form.get("client_secret"), "client_secret_post"


def _slow_down(retry_after: int) -> Response:
    return JSONResponse(
        {"error": "slow_down", "error_description": "too many token requests"},
        STATUS_BY_CODE["slow_down"],
        headers={"Retry-After": str(retry_after), **NO_STORE},
    )


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise InvalidRequestError(description="send application/x-www-form-urlencoded")
    form = await request.form()  # raises BodyTooLarge past HUB_MAX_BODY_BYTES
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if key in values:  # RFC 6749 section 3.2: parameters must not repeat
            raise InvalidRequestError(description=f"parameter {key} is repeated")
        values[key] = str(value)
    return values


def _error_response(error: OAuth2Error | BodyTooLarge) -> Response:
    """An OAuth error response (RFC 6749 section 5.2); a body past the limit is an invalid_request."""
    status = status_for(error)
    oauth = error if isinstance(error, OAuth2Error) else InvalidRequestError(description=error.description)
    headers = {k: v for k, v in oauth.get_headers() if k.lower() != "content-type"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="nrhub"'
    return JSONResponse(dict(oauth.get_body()), status, headers=headers)
