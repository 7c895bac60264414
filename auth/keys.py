"""Signing keys: kept in the database so every hub process signs and verifies alike.

One pinned asymmetric algorithm, ES256. The newest unretired key signs; retired keys stay
published (JWKS) until the last token they signed has expired, so rotation never breaks a token.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from joserfc.jwk import ECKey, KeySet

ALGORITHM = "ES256"
_RELOAD_AFTER_SECONDS = 60.0

_SELECT_PUBLISHED = """
SELECT kid, private_jwk::text, public_jwk::text, retired_at IS NULL AS active FROM signing_key
WHERE published_until IS NULL OR published_until > now()
ORDER BY created_at DESC
"""
_INSERT_KEY = """
INSERT INTO signing_key (kid, algorithm, private_jwk, public_jwk) VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb)
"""
_RETIRE = """
UPDATE signing_key SET retired_at = now(), published_until = now() + $1::interval
WHERE retired_at IS NULL
"""


@dataclass(frozen=True, slots=True)
class Keys:
    signing: ECKey | None
    public: KeySet

    def jwks(self) -> dict:
        return self.public.as_dict(private=False)


def _generate() -> tuple[str, str, str]:
    """A new key's id and its private and public JWK as JSON text (independent of connection codecs)."""
    kid = time.strftime("%Y%m%d") + "-" + secrets.token_hex(4)
    key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})
    return kid, json.dumps(key.as_dict(private=True)), json.dumps(key.as_dict(private=False))


async def rotate_key(conn: asyncpg.Connection, token_lifetime: int) -> str:
    """Retire the signing key (still published for one token lifetime plus leeway) and add a new one."""
    kid, private, public = _generate()
    async with conn.transaction():
        # One rotation at a time across processes.
        await conn.execute("LOCK TABLE signing_key IN SHARE ROW EXCLUSIVE MODE")
        await conn.execute(_RETIRE, timedelta(seconds=token_lifetime + 120))
        await conn.execute(_INSERT_KEY, kid, ALGORITHM, private, public)
    return kid


async def ensure_signing_key(conn: asyncpg.Connection) -> None:
    """On first start, make the first key: once, however many requests and processes ask at once."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE signing_key IN SHARE ROW EXCLUSIVE MODE")
        if not await conn.fetchval("SELECT 1 FROM signing_key WHERE retired_at IS NULL"):
            await conn.execute(_INSERT_KEY, *_generate_row())


def _generate_row() -> tuple[str, str, str, str]:
    kid, private, public = _generate()
    return kid, ALGORITHM, private, public


class KeyStore:
    """Process-local view of the keys, reloaded every minute and whenever an unknown kid appears."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._keys: Keys | None = None
        self._loaded_at = 0.0

    async def keys(self, *, refresh: bool = False) -> Keys:
        stale = time.monotonic() - self._loaded_at > _RELOAD_AFTER_SECONDS
        if self._keys is None or refresh or stale:
            self._keys = await self._load()
            self._loaded_at = time.monotonic()
        return self._keys

    async def signing_key(self) -> ECKey:
        keys = await self.keys()
        if keys.signing is None:
            async with self._pool.acquire() as conn:
                await ensure_signing_key(conn)
            keys = await self.keys(refresh=True)
        assert keys.signing is not None
        return keys.signing

    async def _load(self) -> Keys:
        rows = await self._pool.fetch(_SELECT_PUBLISHED)
        signing = next((ECKey.import_key(json.loads(r["private_jwk"])) for r in rows if r["active"]), None)
        public = KeySet([ECKey.import_key(json.loads(r["public_jwk"])) for r in rows])
        return Keys(signing, public)
