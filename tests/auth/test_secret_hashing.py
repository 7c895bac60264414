"""Secret hashing keeps to its two threads, so a burst of sign-ins cannot grow the hub's memory for good.

scrypt's 16 MiB buffer stays in the malloc arena of each thread that ran it; asyncio's default executor
grew to six such threads under a burst (the hour's soak: a 16 MiB step in the hub's RSS). The memory
check runs in a fresh interpreter so that no other test's threads or arenas count.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

from nrhub.auth.secrets import HASHING_THREADS, hash_secret, hashed, verified

BURST = 12

_MEMORY_PROBE = """
import asyncio, json, resource, sys
from nrhub.auth.secrets import hash_secret, verified, warm_hashing

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

async def main():
    stored = hash_secret("right")  # the first 16 MiB block freed: malloc's threshold rises as in the hub
    before = rss_mib()
    await warm_hashing()  # as the hub does at start
    warm = rss_mib()
    for _ in range(3):
        answers = await asyncio.gather(*(verified("right", stored) for _ in range(%d)))
        assert all(answers)
    print(json.dumps({"warmed": warm - before, "grown": rss_mib() - warm}))

asyncio.run(main())
"""


async def test_a_burst_runs_in_the_hashing_threads_only() -> None:
    stored = hash_secret("correct horse battery staple")
    before = {t.name for t in threading.enumerate()}  # other tests of this process may have started threads
    answers = await asyncio.gather(
        *(verified("correct horse battery staple", stored) for _ in range(BURST)),
        *(verified("wrong", stored) for _ in range(BURST)),
        verified("anything", None),  # an unknown client still costs one scrypt, and fails
    )
    assert answers == [True] * BURST + [False] * BURST + [False]
    names = {t.name for t in threading.enumerate()}
    assert 1 <= sum(n.startswith("secret-hashing") for n in names) <= HASHING_THREADS, names
    assert not {n for n in names - before if not n.startswith("secret-hashing")}, names - before  # no other pool grew


async def test_hashed_secrets_verify() -> None:
    stored = await hashed("a password of twelve")
    assert stored.startswith("scrypt$16384$8$1$")
    assert await verified("a password of twelve", stored)
    assert not await verified("a password of twelvE", stored)


def test_after_warming_bursts_of_sign_ins_take_no_lasting_memory() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE % BURST], capture_output=True, text=True, timeout=120, check=True
    )
    measured = json.loads(done.stdout)
    # Warming takes the two threads' 16 MiB buffers; bursts after it take nothing lasting (six
    # default-executor threads grew it by 96 MiB, the soak's hub by 16 MiB an hour in).
    assert measured["warmed"] <= HASHING_THREADS * 16 + 8, measured
    assert measured["grown"] <= 4, f"RSS grew {measured['grown']:.1f} MiB over bursts of {BURST} after warming"
