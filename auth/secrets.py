"""Client secrets, passwords, codes and refresh tokens: generated, hashed, compared.

Secrets and passwords are stored as salted scrypt hashes and compared in constant time
(DESIGN: security model). Codes and refresh tokens are long random values, so a plain SHA-256
is enough to keep them useless if the table leaks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_DUMMY = None  # built lazily: the hash compared against when an id is unknown


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_client_id() -> str:
    return "cl_" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Constant-time check; an unknown client (stored None) costs the same as a known one."""
    global _DUMMY
    if stored is None:
        _DUMMY = _DUMMY or hash_secret(secrets.token_urlsafe(16))
        stored, known = _DUMMY, False
    else:
        known = True
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.urlsafe_b64decode(digest + "==")
        actual = hashlib.scrypt(
            secret.encode(),
            salt=base64.urlsafe_b64decode(salt + "=="),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected) and known


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
