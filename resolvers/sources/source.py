"""One federated source at run time: its connector wrapped in the protections of its policy.

A batch of cells (indicator x unit x period) is answered in three steps: fresh cache entries are
taken as they are; the rest become as few upstream calls as the connector allows (one for all
indicators, or one per indicator, always units x periods); each call runs under the breaker, the
concurrency limit, a per-attempt timeout bounded by the request's deadline, and bounded retries
with full jitter when the connector's calls are idempotent. When a call fails, its cells are
answered from stale cache entries where there are some, and with the failure otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from nrhub.resolvers.sources.breaker import Breaker
from nrhub.resolvers.sources.cache import CellKey, ValueCache
from nrhub.resolvers.sources.config import SourceConfig
from nrhub.resolvers.sources.failures import CircuitOpen, SourceFailure, SourceTimeout, SourceUpstreamError
from nrhub.resolvers.sources.health import Health, HealthReport
from nrhub.resolvers.sources.values import Question, SourceValue

log = logging.getLogger("hub.sources")


class Connector(Protocol):
    idempotent: bool
    batches_indicators: bool

    async def ask(self, question: Question) -> list[SourceValue]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CellAnswer:
    """Every disaggregation the source has for one cell; ``stale_age`` (s) when served stale."""

    values: tuple[SourceValue, ...]
    stale_age: float | None = None


class Source:
    def __init__(
        self,
        config: SourceConfig,
        connector: Connector,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.name = config.name
        self.kind = config.kind
        self.policy = config.policy
        self.connector = connector
        self.indicators = tuple(code for code, _ in config.indicators)
        self.clock = clock
        self.jitter = jitter
        self.breaker = Breaker(self.policy.breaker_failures, self.policy.breaker_cooldown, clock)
        self.cache = ValueCache(self.policy.cache_ttl, self.policy.max_stale, self.policy.cache_entries, clock)
        self.health = Health(clock)
        self.slots = asyncio.Semaphore(self.policy.max_concurrency)

    def serves(self, indicator: str) -> bool:
        return indicator in self.indicators

    def report(self) -> HealthReport:
        return self.health.report(self.breaker)

    async def answer(self, cells: Sequence[CellKey], deadline: float) -> dict[CellKey, CellAnswer | SourceFailure]:
        """An answer (or the failure) for every cell, by at most one call per question."""
        answers: dict[CellKey, CellAnswer | SourceFailure] = {}
        missing = []
        for key in dict.fromkeys(cells):
            fresh = self.cache.fresh(key)
            if fresh is None:
                missing.append(key)
            else:
                answers[key] = CellAnswer(fresh)
        groups = self._group(missing)
        questions = [question for question, _ in groups]
        outcomes = await asyncio.gather(*(self._call(q, deadline) for q in questions))
        for (question, keys), outcome in zip(groups, outcomes, strict=True):
            if isinstance(outcome, SourceFailure):
                answers.update((key, self._stale_or(key, outcome)) for key in keys)
                continue
            found: dict[CellKey, list[SourceValue]] = defaultdict(list)
            for value in outcome:
                found[(value.indicator, value.unit, value.period)].append(value)
            self.cache.store(
                ((i, u, p), tuple(found.get((i, u, p), ())))
                for i in question.indicators
                for u in question.units
                for p in question.periods
            )
            answers.update((key, CellAnswer(tuple(found.get(key, ())))) for key in keys)
        return answers

    def _group(self, keys: list[CellKey]) -> list[tuple[Question, list[CellKey]]]:
        """One question per indicator, or one in all when the connector batches indicators; split by
        ``max_units`` when the source takes no more units per call (a URL has a length limit)."""
        by_group: dict[tuple[str, int], list[CellKey]] = defaultdict(list)
        units = sorted({key[1] for key in keys})
        chunk = {unit: n // self.policy.max_units if self.policy.max_units else 0 for n, unit in enumerate(units)}
        for key in keys:
            by_group[("" if self.connector.batches_indicators else key[0], chunk[key[1]])].append(key)
        groups = []
        for members in by_group.values():
            question = Question(
                tuple(sorted({k[0] for k in members})),
                tuple(sorted({k[1] for k in members})),
                tuple(sorted({k[2] for k in members})),
            )
            groups.append((question, members))
        return groups

    def _stale_or(self, key: CellKey, failure: SourceFailure) -> CellAnswer | SourceFailure:
        stale = self.cache.stale(key)
        if stale is None:
            return failure
        self.health.stale_served += 1
        return CellAnswer(stale[0], stale[1])

    async def _call(self, question: Question, deadline: float) -> list[SourceValue] | SourceFailure:
        if not self.breaker.allow():
            return CircuitOpen("the circuit is open")
        settled = False
        try:
            outcome = await self._attempts(question, deadline)
            if isinstance(outcome, SourceFailure):
                self.breaker.failed()
            else:
                self.breaker.succeeded()
            settled = True
            return outcome
        finally:
            if not settled:  # cancelled (the request went away): neither success nor failure
                self.breaker.abandoned()

    async def _attempts(self, question: Question, deadline: float) -> list[SourceValue] | SourceFailure:
        attempts = 1 + (self.policy.retries if self.connector.idempotent else 0)
        failure: SourceFailure = SourceTimeout("the request's deadline had passed")
        for attempt in range(attempts):
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            started = self.clock()
            try:
                async with asyncio.timeout(min(self.policy.timeout, remaining)):
                    async with self.slots:
                        values = await self.connector.ask(question)
            except TimeoutError:
                failure = SourceTimeout(f"no answer within {min(self.policy.timeout, remaining):.2f} s")
            except SourceFailure as exc:
                failure = exc
            except Exception as exc:  # a connector defect must not take the request down with it
                log.exception("source %s: unexpected error", self.name)
                failure = SourceUpstreamError(f"unexpected {type(exc).__name__}")
            else:
                self.health.record(self.clock() - started, None)
                return values
            self.health.record(self.clock() - started, failure.kind)
            log.warning(
                "source %s: %s on attempt %d of %d: %s", self.name, failure.kind, attempt + 1, attempts, failure.detail
            )
            if not failure.retryable or attempt + 1 == attempts:
                break
            pause = self.jitter() * self.policy.retry_backoff * 2**attempt  # full jitter
            if self.clock() + pause >= deadline:
                break
            await asyncio.sleep(pause)
        return failure
