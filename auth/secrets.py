"""Client secrets, passwords, codes and refresh tokens: generated, hashed, compared.

Secrets and passwords are stored as salted scrypt hashes and compared in constant time
(DESIGN: security model). Codes and refresh tokens are long random values, so a plain SHA-256
is enough to keep them useless if the table leaks.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

_N, _R, _P = 2**14, 8, 1  # scrypt's working buffer: 128 * n * r bytes, 16 MiB
_DUMMY = None  # built lazily: the hash compared against when an id is unknown

# Hashing runs off the event loop, in threads of its own. Each thread that runs scrypt keeps its 16 MiB
# buffer for good (glibc's malloc keeps a freed block that size in the thread's arena once its mmap
# threshold has risen), and asyncio's default executor grows to six threads under a burst of sign-ins:
# the hour's soak saw the hub's RSS step by 16 MiB at such a burst. Two threads bound that to 32 MiB and
# a burst to two scrypt runs at a time (about 70 ms each); the rest queue. ``warm_hashing`` starts both
# at start-up, so the hub holds that memory from its first minute rather than stepping up hours later.
HASHING_THREADS = 2
_HASHING = ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="secret-hashing")


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


async def hashed(secret: str) -> str:
    """``hash_secret`` off the event loop, in the hashing threads."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_secret, secret)


async def verified(secret: str, stored: str | None) -> bool:
    """``verify_secret`` off the event loop, in the hashing threads."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, verify_secret, secret, stored)


async def warm_hashing() -> None:
    """Start every hashing thread and run scrypt once in each (about 70 ms, in parallel)."""
    together = threading.Barrier(HASHING_THREADS, timeout=10)  # each run waits for the others: one per thread

    def run() -> None:
        together.wait()
        hash_secret(secrets.token_urlsafe(16))

    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(_HASHING, run) for _ in range(HASHING_THREADS)))


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
