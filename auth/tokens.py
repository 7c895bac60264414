"""JWT access tokens (RFC 9068): issued by the hub, verified by every hub process.

Verification is parse -> authenticate -> validate, each check beside the rule it enforces.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import ECKey

from nrhub.auth.keys import ALGORITHM, KeyStore

MAX_TOKEN_BYTES = 8192
LEEWAY_SECONDS = 60
_TYPES = {"at+jwt", "application/at+jwt"}


class InvalidToken(Exception):
    """The bearer token cannot be accepted; the message is safe to show (RFC 6750 error_description)."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    client_id: str
    scopes: frozenset[str]
    jti: str
    expires_at: int


def issue_access_token(
    key: ECKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    client_id: str,
    scope: str,
    lifetime: int,
    now: int,
    jti: str | None = None,
) -> tuple[str, str]:
    """A signed token and its jti (random unless given: a person's is derived from their refresh token)."""
    jti = jti or secrets.token_urlsafe(16)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "client_id": client_id,
        "scope": scope,
        "jti": jti,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    # RFC 9068 section 2.1: typ "at+jwt" tells access tokens from other JWTs (e.g. ID tokens).
    header = {"alg": ALGORITHM, "typ": "at+jwt", "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM]), jti


async def verify_access_token(token: str, store: KeyStore, *, issuer: str, audience: str, now: int) -> AccessClaims:
    header = parse_header(token, (ALGORITHM,))
    key = await _key_for(header, store)
    try:
        decoded = jwt.decode(token, key, algorithms=[ALGORITHM])  # explicit allow-list
    except (JoseError, ValueError) as exc:
        raise InvalidToken("the token signature does not verify") from exc
    return _validate(decoded.claims, issuer=issuer, audience=audience, now=now)


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read before its signature is checked: only to choose whose keys
    check it (and ``iss`` is checked again, signed, afterwards)."""
    try:
        claims = json.loads(_compact(token).payload)
    except ValueError as exc:
        raise InvalidToken("the token is not a compact JWS") from exc
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


def _compact(token: str) -> Any:
    """The token's three parts, parsed but not verified; the size is checked first."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("the token is too large")
    try:
        return jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidToken("the token is not a compact JWS") from exc


def parse_header(token: str, algorithms: Collection[str]) -> dict[str, Any]:
    header = _compact(token).headers()
    # RFC 8725 section 3.1: accept exactly the pinned algorithms, never "none" or an HMAC one.
    if header.get("alg") not in algorithms:
        raise InvalidToken(f"the token must be signed with {' or '.join(algorithms)}")
    # RFC 9068 section 4: reject a JWT whose typ is not at+jwt (authlib's validator does not).
    if str(header.get("typ", "")).lower() not in _TYPES:
        raise InvalidToken("the token is not an access token (typ must be at+jwt)")
    if not isinstance(header.get("kid"), str):
        raise InvalidToken("the token names no key (kid)")
    return header


async def _key_for(header: dict[str, Any], store: KeyStore) -> ECKey:
    kid = header["kid"]
    for refresh in (False, True):  # an unknown kid reloads the keys once (a rotation elsewhere)
        keys = await store.keys(refresh=refresh)
        try:
            key = keys.public.get_by_kid(kid)
        except (InvalidKeyIdError, ValueError, KeyError):
            continue
        assert isinstance(key, ECKey)
        return key
    raise InvalidToken("the token was signed with an unknown key")


def check_registered_claims(claims: dict[str, Any], *, issuer: str, audience: str, now: int) -> int:
    """iss, aud, exp and nbf (RFC 9068 section 4, 60 s leeway); returns exp."""
    # iss must match exactly; aud must contain this resource server.
    if claims.get("iss") != issuer:
        raise InvalidToken("the token was issued by another issuer")
    aud = claims.get("aud")
    if audience not in (aud if isinstance(aud, list) else [aud]):
        raise InvalidToken("the token is not meant for this resource (aud)")
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int) or exp + LEEWAY_SECONDS < now:
        raise InvalidToken("the token has expired")
    if isinstance(nbf, int) and nbf - LEEWAY_SECONDS > now:
        raise InvalidToken("the token is not valid yet")
    return exp


def _validate(claims: dict[str, Any], *, issuer: str, audience: str, now: int) -> AccessClaims:
    exp = check_registered_claims(claims, issuer=issuer, audience=audience, now=now)
    try:
        return AccessClaims(
            subject=str(claims["sub"]),
            client_id=str(claims["client_id"]),
            scopes=frozenset(str(claims["scope"]).split()),
            jti=str(claims["jti"]),
            expires_at=exp,
        )
    except KeyError as exc:
        raise InvalidToken(f"the token lacks the {exc.args[0]} claim") from None
