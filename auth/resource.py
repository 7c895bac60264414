"""The resource server: a request's bearer token becomes a Principal, before GraphQL runs.

No token: the anonymous principal (auth.anonymous). A token that fails any check: 401 with an
RFC 6750 ``WWW-Authenticate`` challenge, never a silent downgrade to anonymous.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import asyncpg

from nrhub.auth.anonymous import PublicReader
from nrhub.auth.external import ExternalIssuer
from nrhub.auth.keys import KeyStore
from nrhub.auth.principal import Grants, Principal
from nrhub.auth.scopes import named
from nrhub.auth.tokens import InvalidToken, unverified_issuer, verify_access_token


class Unauthorized(Exception):
    """401 with the challenge RFC 6750 section 3 asks for."""

    code = "UNAUTHENTICATED"  # its status comes from auth.http_status, as every error's does

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    @property
    def challenge(self) -> str:
        safe = self.description.replace('"', "'")
        return f'Bearer realm="nrhub", error="invalid_token", error_description="{safe}"'


# One round trip: is the client still enabled, is the token revoked, and which indicators the
# indicator:/field: scopes name (DESIGN: the readable indicators are exactly their union).
_SELECT_STANDING = """
SELECT c.disabled OR coalesce(u.disabled, false) AS disabled, coalesce(u.agency_code, c.agency_code) AS agency_code,
       EXISTS (SELECT 1 FROM revoked_token r WHERE r.jti = $2) AS revoked,
       ARRAY(SELECT i.code FROM indicator i WHERE i.code = ANY($3::text[]) OR i.field = ANY($4::text[])) AS indicators
FROM oauth_client c LEFT JOIN hub_user u ON u.username = $5::text
WHERE c.client_id = $1
"""


# A trusted issuer's token: revoked (by jti, as the hub's own), and the indicators its mapped scopes name.
_SELECT_EXTERNAL = """
SELECT EXISTS (SELECT 1 FROM revoked_token r WHERE r.jti = $1) AS revoked,
       ARRAY(SELECT i.code FROM indicator i WHERE i.code = ANY($2::text[]) OR i.field = ANY($3::text[])) AS indicators
"""


class Authenticator:
    def __init__(
        self,
        pool: asyncpg.Pool,
        keys: KeyStore,
        public: PublicReader,
        *,
        issuer: str,
        audience: str,
        trusted: Sequence[ExternalIssuer] = (),
    ) -> None:
        self._pool = pool
        self._keys = keys
        self._public = public
        self._issuer = issuer
        self._audience = audience
        self._trusted = {t.config.issuer: t for t in trusted}

    async def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            return await self._public.principal()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("use the Bearer scheme (RFC 6750)")
        try:
            trusted = self._trusted.get(unverified_issuer(token) or "") if self._trusted else None
            if trusted is not None:
                return await self._external(trusted, token)
            claims = await verify_access_token(
                token, self._keys, issuer=self._issuer, audience=self._audience, now=int(time.time())
            )
        except InvalidToken as exc:
            raise Unauthorized(str(exc)) from None
        user = None if claims.subject == claims.client_id else claims.subject
        row = await self._pool.fetchrow(
            _SELECT_STANDING,
            claims.client_id,
            claims.jti,
            named(claims.scopes, "indicator:"),
            named(claims.scopes, "field:"),
            user,
        )
        if row is None or row["disabled"]:
            raise Unauthorized("the client or the account is unknown or disabled")
        if row["revoked"]:
            raise Unauthorized("the token has been revoked")
        return Principal(
            grants=_grants(claims.scopes, row["indicators"]),
            scopes=claims.scopes,
            agency_code=row["agency_code"],
            client_id=claims.client_id,
            user=user,
            token_expires_at=claims.expires_at,
            token_id=claims.jti,
        )

    async def _external(self, trusted: ExternalIssuer, token: str) -> Principal:
        claims = await trusted.verify(token, audience=self._audience, now=int(time.time()))
        row = await self._pool.fetchrow(
            _SELECT_EXTERNAL, claims.jti, named(claims.scopes, "indicator:"), named(claims.scopes, "field:")
        )
        assert row is not None
        if row["revoked"]:
            raise InvalidToken("the token has been revoked")
        return Principal(
            grants=_grants(claims.scopes, row["indicators"]),
            scopes=claims.scopes,
            client_id=claims.client_id,
            user=claims.subject,
            token_expires_at=claims.expires_at,
            token_id=claims.jti,
        )


def _grants(scopes: frozenset[str], named_indicators: list[str]) -> Grants:
    """What a token's scopes grant, whoever issued it. ``named_indicators`` are the codes its
    indicator: and field: scopes name (DESIGN: the readable indicators are exactly their union)."""
    # Values need data:read; without it no indicator is readable (catalog:read sees units only).
    readable = frozenset(named_indicators) if "data:read" in scopes else frozenset()
    regions = named(scopes, "region:")
    return Grants(indicators=readable, regions=frozenset(regions) if regions else None)
