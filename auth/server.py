"""The OAuth2 authorization server's endpoints (RFC 6749, 7009, 7662, 8414, 9068).

Grants: client_credentials for machines (client_secret_basic or client_secret_post). Errors are
authlib's OAuth2Error classes, which carry their own status, body and headers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass
from urllib.parse import unquote_plus

import asyncpg
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from auth.keys import ALGORITHM, KeyStore
from auth.ratelimit import RateLimiter
from auth.scopes import FIXED, parse_scope
from auth.secrets import verify_secret
from auth.tokens import AccessClaims, InvalidToken, issue_access_token, verify_access_token

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True, slots=True)
class ServerSettings:
    issuer: str
    audience: str
    token_lifetime: int
    token_rate_limit: int


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    client_id: str
    agency_code: str
    scopes: frozenset[str]


_SELECT_CLIENT = """
SELECT client_id, secret_hash, agency_code, scopes, disabled FROM oauth_client WHERE client_id = $1
"""


class AuthorizationServer:
    # path, method name, HTTP method
    ROUTES = (
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
        self._limiter = RateLimiter(pool, limit=settings.token_rate_limit)

    async def token(self, request: Request) -> Response:
        try:
            form = await _form(request)
            client_id_hint = _client_id_hint(request, form)
            address = request.client.host if request.client else "unknown"
            # Per client and per address, counted before the secret is checked (RFC 6749 10.10).
            retry_after = await self._limiter.hit([f"token:addr:{address}", f"token:client:{client_id_hint}"])
            if retry_after is not None:
                return JSONResponse(
                    {"error": "slow_down", "error_description": "too many token requests"},
                    429,
                    headers={"Retry-After": str(retry_after), **NO_STORE},
                )
            client = await self._authenticate_client(request, form)
            if form.get("grant_type") != "client_credentials":
                raise UnsupportedGrantTypeError()
            return await self._issue_for_client(client, form.get("scope"))
        except OAuth2Error as error:
            return _error_response(error)

    async def _issue_for_client(self, client: AuthenticatedClient, scope_param: str | None) -> Response:
        requested = parse_scope(scope_param) or sorted(client.scopes)
        # RFC 6749 section 3.3: a token's scopes are a subset of what the client is granted.
        extra = [s for s in requested if s not in client.scopes]
        if extra:
            raise InvalidScopeError(description=f"not granted to this client: {' '.join(extra)}")
        scope = " ".join(requested)
        key = await self._keys.signing_key()
        token, _ = issue_access_token(
            key,
            issuer=self._settings.issuer,
            audience=self._settings.audience,
            subject=client.client_id,
            client_id=client.client_id,
            scope=scope,
            lifetime=self._settings.token_lifetime,
            now=int(time.time()),
        )
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self._settings.token_lifetime,
            "scope": scope,
        }
        return JSONResponse(body, headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        """RFC 7009: always 200 for a token the client may revoke or that is unknown."""
        try:
            form = await _form(request)
            client = await self._authenticate_client(request, form)
        except OAuth2Error as error:
            return _error_response(error)
        claims = await self._claims(form.get("token", ""))
        if claims is not None and claims.client_id == client.client_id:
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
            await self._authenticate_client(request, form)
        except OAuth2Error as error:
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
                "token_endpoint": f"{issuer}/oauth/token",
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "revocation_endpoint": f"{issuer}/oauth/revoke",
                "introspection_endpoint": f"{issuer}/oauth/introspect",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": sorted(FIXED),
                "response_types_supported": [],
                "access_token_signing_alg_values_supported": [ALGORITHM],
            }
        )

    async def jwks(self, request: Request) -> Response:
        keys = await self._keys.keys()
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

    async def _authenticate_client(self, request: Request, form: dict[str, str]) -> AuthenticatedClient:
        client_id, secret, _ = _credentials(request, form)
        row = await self._pool.fetchrow(_SELECT_CLIENT, client_id) if client_id else None
        # Known and unknown ids take the same path and the same time: scrypt runs either way.
        stored = row["secret_hash"] if row else None
        ok = await asyncio.to_thread(verify_secret, secret or "", stored)
        if not ok or row is None or row["disabled"]:
            error = InvalidClientError(description="client authentication failed")
            error.status_code = 401
            raise error
        if row["secret_hash"] is None:
            raise UnauthorizedClientError(description="public clients cannot use this endpoint")
        return AuthenticatedClient(row["client_id"], row["agency_code"], frozenset(row["scopes"]))


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


def _client_id_hint(request: Request, form: dict[str, str]) -> str:
    try:
        client_id, _, _ = _credentials(request, form)
    except OAuth2Error:
        return "malformed"
    return (client_id or "none")[:64]


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise InvalidRequestError(description="send application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > 16_384:
        raise InvalidRequestError(description="the request is too large")
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if key in values:  # RFC 6749 section 3.2: parameters must not repeat
            raise InvalidRequestError(description=f"parameter {key} is repeated")
        values[key] = str(value)
    return values


def _error_response(error: OAuth2Error) -> Response:
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    if error.status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="nrhub"'
    return JSONResponse(dict(error.get_body()), error.status_code, headers=headers)
