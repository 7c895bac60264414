"""The soak's readers: table, series and point queries, one after another, until the run ends (bench/soak.py).

They read what the writers write (the monthly report's indicators for the provinces and periods of the
report slots), so a read may meet a value being replaced. Reads are not retried: each is counted by
its outcome (bench/soak_http.py), and while PostgreSQL restarts they are answered 503.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx

from bench.soak_http import Client, Tally, Tokens, graphql
from bench.soak_writes import PERIODS

TABLE = """{ table(indicators: ["RETAIL", "NEW_ENT", "BUDGET_REV"], parent: "VN", level: PROVINCE) {
  columns { code } rows } }"""
SERIES = """query($i: String!, $from: Period!, $to: Period!) {
  series(indicator: $i, parent: "VN", level: PROVINCE, from: $from, to: $to) { periods rows } }"""
POINT = """query($i: String!, $u: String!, $p: Period!) {
  observation(indicator: $i, unit: $u, period: $p) { value status provenance { kind submissionId } } }"""
INDICATORS = ["RETAIL", "NEW_ENT", "BUDGET_REV"]


class Readers:
    """``count`` workers sending reads until ``stop``; ``last_ok`` is when a read last succeeded."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tally: Tally,
        tokens: Tokens,
        reader: Client,
        units: list[str],
        *,
        count: int,
        pause: float,
        seed: int,
    ) -> None:
        self.http, self.tally, self.tokens, self.reader, self.units = http, tally, tokens, reader, units
        self.count, self.pause = count, pause
        self.rng = random.Random(seed)
        self.stop = asyncio.Event()
        self.last_ok = 0.0

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.count)))

    async def read_once(self, kind: str) -> bool:
        token = await self.tokens.get(self.reader, within=5)
        if token is None:
            self.tally.note(kind, "no token")
            return False
        query, variables = self._request(kind)
        answer = await graphql(self.http, self.tally, kind, token, query, variables)
        if answer.data is not None:
            self.last_ok = time.monotonic()
        return answer.data is not None

    async def _worker(self) -> None:
        kinds = ["read:table", "read:series", "read:point", "read:point"]  # point lookups are the common read
        while not self.stop.is_set():
            await self.read_once(self.rng.choice(kinds))
            await asyncio.sleep(self.pause)

    def _request(self, kind: str) -> tuple[str, dict[str, object]]:
        indicator = self.rng.choice(INDICATORS)
        if kind == "read:table":
            return TABLE, {}
        if kind == "read:series":
            start = self.rng.randrange(len(PERIODS) - 1)
            return SERIES, {"i": indicator, "from": PERIODS[start], "to": PERIODS[-1]}
        return POINT, {"i": indicator, "u": self.rng.choice(self.units), "p": self.rng.choice(PERIODS)}
