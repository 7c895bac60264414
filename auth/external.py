"""Access tokens from external issuers the operator trusts (README, "External issuers").

A government usually runs its own identity provider. Its JWT access tokens (RFC 9068) are
accepted when the operator has configured that issuer: its exact issuer identifier, the URL of its
JWKS (RFC 7517), the algorithms it signs with, and which values of one of its claims grant which
of the hub's reading scopes. Nothing in the token becomes a hub scope by itself, only through the
mapping, so an issuer cannot widen a caller's access by naming the hub's scopes. Submitting,
reviewing and administering need an identity the hub registered (a client with an agency), so an
external issuer grants reading only.

Keys are fetched on first use and kept for ``keys_ttl`` seconds. A token naming an unknown kid
fetches them again (the issuer rotated), but unknown kids cause at most one fetch every
MIN_REFETCH_SECONDS, so tokens with random kids cannot make the hub flood the issuer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from nrhub.auth.tokens import InvalidToken, check_registered_claims, parse_header

log = logging.getLogger("hub.auth")
MIN_REFETCH_SECONDS = 30.0
MAX_JWKS_BYTES = 1_000_000
# Asymmetric algorithms only (RFC 8725 section 3.1): never "none", never an HMAC one, whose key
# would be public here.
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One ``[[trusted_issuer]]`` table of the settings file."""

    name: str  # prefixes its clients' and people's ids in the hub
    issuer: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    claim: str  # the claim whose values ``grants`` maps, e.g. "scope" or "roles"
    grants: Mapping[str, tuple[str, ...]]  # a claim value -> the hub scopes it grants
    audience: str | None = None  # None: the hub's own audience
    client_claim: str = "client_id"  # RFC 9068; "azp" for many OpenID providers
    keys_ttl: float = 300.0
    timeout: float = 3.0


@dataclass(frozen=True, slots=True)
class ExternalClaims:
    client_id: str
    subject: str
    scopes: frozenset[str]  # the hub's scopes, through the mapping
    jti: str | None
    expires_at: int


class ExternalIssuer:
    """Verifies one trusted issuer's tokens with its published keys."""

    def __init__(
        self, config: TrustedIssuer, http: httpx.AsyncClient, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._keys: KeySet | None = None
        self._expires = 0.0  # fetch on first use
        self._fetched_at = 0.0
        self._refetched_at = -MIN_REFETCH_SECONDS  # the last fetch an unknown kid caused
        self._lock = asyncio.Lock()

    async def verify(self, token: str, *, audience: str, now: int) -> ExternalClaims:
        header = parse_header(token, self.config.algorithms)  # also typ at+jwt and a kid
        key = await self._key(header["kid"])
        try:
            decoded = jwt.decode(token, key, algorithms=list(self.config.algorithms))
        except (JoseError, ValueError) as exc:
            raise InvalidToken("the token signature does not verify") from exc
        claims = decoded.claims
        expires_at = check_registered_claims(
            claims, issuer=self.config.issuer, audience=self.config.audience or audience, now=now
        )
        client = claims.get(self.config.client_claim)
        subject = claims.get("sub")
        if not isinstance(client, str) or not isinstance(subject, str):
            raise InvalidToken(f"the token lacks the {self.config.client_claim} or sub claim")
        jti = claims.get("jti")
        # Prefixed ids never meet the hub's own clients and people (limits, revocation checks, logs).
        return ExternalClaims(
            client_id=f"{self.config.name}/{client}",
            subject=f"{self.config.name}/{subject}",
            scopes=self._granted(claims.get(self.config.claim)),
            jti=jti if isinstance(jti, str) else None,
            expires_at=expires_at,
        )

    def _granted(self, value: Any) -> frozenset[str]:
        # A space-delimited string (RFC 9068 "scope") or a list of strings (e.g. "roles").
        values = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
        return frozenset(s for v in values if isinstance(v, str) for s in self.config.grants.get(v, ()))

    async def _key(self, kid: str) -> Any:
        if self._clock() >= self._expires:
            await self._fetch()
        if self._keys is None:
            raise InvalidToken(f"the keys of issuer {self.config.name} could not be fetched")
        key = self._find(kid)
        if key is None and self._clock() - self._refetched_at >= MIN_REFETCH_SECONDS:
            self._refetched_at = self._clock()
            await self._fetch()  # the issuer may have rotated its keys
            key = self._find(kid)
        if key is None:
            raise InvalidToken("the token was signed with an unknown key")
        return key

    def _find(self, kid: str) -> Any:
        if self._keys is None:
            return None
        return next((k for k in self._keys.keys if k.kid == kid), None)

    async def _fetch(self) -> None:
        fetched_before = self._fetched_at
        async with self._lock:
            if self._fetched_at != fetched_before:
                return  # another request fetched them while this one waited
            self._fetched_at = self._clock()
            try:
                self._keys = await self._download()
            except Exception as exc:  # unreachable, an error status, or a JWKS malformed in any way
                log.warning("issuer %s: its keys could not be fetched: %s", self.config.name, exc)
                # Keep the keys held, if any (an issuer briefly down must not log everyone out), and
                # ask again in 30 s, not on every request.
                self._expires = self._clock() + MIN_REFETCH_SECONDS
                return
            self._expires = self._clock() + self.config.keys_ttl

    async def _download(self) -> KeySet:
        body = bytearray()
        async with self._http.stream("GET", self.config.jwks_uri, timeout=self.config.timeout) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("the JWKS is larger than allowed")
        document = json.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS")
        # Public signature keys only: never a symmetric key, never one with its private part.
        keys = [
            k
            for k in document["keys"]
            if isinstance(k, dict)
            and k.get("kty") in ("RSA", "EC", "OKP")
            and k.get("use", "sig") == "sig"
            and "d" not in k
            and isinstance(k.get("kid"), str)
        ]
        return KeySet.import_key_set({"keys": keys})
