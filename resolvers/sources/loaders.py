"""Per-request loading of federated cells: one DataLoader per source, so every load a request makes
of one source within a short window becomes one batch, and different sources load concurrently.

Authorization is settled before a cell gets here (only readable indicators, only units the
caller's scope covers); ``load`` checks it again, so a defect upstream of it cannot turn into a
call the caller was not entitled to cause.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiodataloader import DataLoader, Loader, dispatch_queue

from nrhub.resolvers.errors import Forbidden, SourceUnavailable
from nrhub.resolvers.scope import Scope
from nrhub.resolvers.sources.failures import SourceFailure
from nrhub.resolvers.sources.registry import SourceRegistry
from nrhub.resolvers.sources.values import SourceValue

DEFAULT_WINDOW = 12
# Why a source's values are missing, in words fit for any caller: the kind, never the detail.
_REASONS = {
    "TIMEOUT": "it did not answer in time",
    "CONNECTION": "it could not be reached",
    "BAD_STATUS": "it answered with an error status",
    "UPSTREAM_ERROR": "it reported an error",
    "MALFORMED": "its answer was malformed and was refused",
    "TOO_LARGE": "its answer was larger than allowed and was refused",
    "CIRCUIT_OPEN": "it failed repeatedly and is not being called for now",
}


class UnitRef(Protocol):
    id: int
    code: str


@dataclass(frozen=True, slots=True)
class Cell:
    """What one load asks for: an indicator's values for one unit and one period."""

    indicator: str
    source: str
    unit_id: int
    unit_code: str
    period: str


@dataclass(frozen=True, slots=True)
class CellValues:
    source: str
    values: tuple[SourceValue, ...]
    stale_age: int | None  # whole seconds, when served stale from the cache

    def get(self, dims: str) -> SourceValue | None:
        return next((v for v in self.values if v.dims == dims), None)

    @property
    def provenance(self) -> str:
        """``source:<name>``, with ``;stale;age=<seconds>`` when served stale."""
        if self.stale_age is None:
            return f"source:{self.source}"
        return f"source:{self.source};stale;age={self.stale_age}"


def unavailable(source: str, kind: str) -> SourceUnavailable:
    return SourceUnavailable(f"source {source} is unavailable: {_REASONS.get(kind, 'it failed')}")


class _WindowedLoader(DataLoader):
    """A DataLoader that gathers keys for ``window`` seconds instead of one loop turn, so sibling
    fields that reach the same source after a few milliseconds of their own work share one call."""

    def __init__(self, batch_load_fn: Any, window: float) -> None:
        super().__init__(batch_load_fn=batch_load_fn)
        self.window = window

    def do_resolve_reject(self, key: Any, future: asyncio.Future) -> None:
        self._queue.append(Loader(key=key, future=future))
        if len(self._queue) == 1:
            self.loop.call_later(self.window, dispatch_queue, self)


class SourceLoaders:
    """Created for each request with its scope; the request's deadline starts now."""

    def __init__(self, registry: SourceRegistry | None, scope: Scope) -> None:
        self.registry = registry
        self.scope = scope
        self.deadline = time.monotonic() + (registry.request_budget if registry else 0.0)
        self._loaders: dict[str, DataLoader] = {}

    def window(self, source: str) -> int:
        """How many periods back "the latest value" looks at this source."""
        found = self.registry.get(source) if self.registry else None
        return found.policy.latest_window if found else DEFAULT_WINDOW

    async def load(self, cells: Sequence[Cell]) -> list[CellValues | SourceUnavailable]:
        """Values (or why they are missing) for every cell, in order; never raises for a source."""
        for cell in cells:
            # DESIGN: authorization before any source is called.
            if not self.scope.may_read(cell.indicator) or not self.scope.covers_unit(cell.unit_id):
                raise Forbidden(f"you may not read {cell.indicator} for unit {cell.unit_code}")
        return list(await asyncio.gather(*(self._load_one(cell) for cell in cells)))

    async def load_parts(
        self, indicator: str, units: Sequence[UnitRef], cells: Sequence[Cell]
    ) -> list[CellValues | SourceUnavailable]:
        """The cells aggregates of ``indicator`` for ``units`` are computed from.

        The aggregate is what the caller reads, so it is the aggregate that must be readable: its
        parts (a rate's components, the provinces behind the nation) are combined, never shown one
        by one, as the hub's own aggregates read them inside SQL (migration 0005).
        """
        if not self.scope.may_read(indicator):
            raise Forbidden(f"you may not read {indicator}")
        for unit in units:
            if not self.scope.covers_unit(unit.id):
                raise Forbidden(f"you may not read {indicator} for unit {unit.code}")
        return list(await asyncio.gather(*(self._load_one(cell) for cell in cells)))

    async def _load_one(self, cell: Cell) -> CellValues | SourceUnavailable:
        source = self.registry.get(cell.source) if self.registry else None
        if source is None:
            return SourceUnavailable(f"source {cell.source} is not configured on this hub")
        if not source.serves(cell.indicator):
            return SourceUnavailable(f"source {cell.source} is not configured to serve {cell.indicator}")
        loader = self._loaders.get(cell.source)
        if loader is None:
            loader = self._loaders[cell.source] = _WindowedLoader(
                self._batch_for(cell.source), source.policy.batch_window
            )
        try:
            result: CellValues = await loader.load(cell)
        except SourceUnavailable as exc:
            return exc
        return result

    def _batch_for(self, name: str) -> Any:
        async def batch(cells: list[Cell]) -> list[CellValues | SourceUnavailable]:
            source = self.registry.get(name) if self.registry else None
            assert source is not None
            answers = await source.answer([(c.indicator, c.unit_code, c.period) for c in cells], self.deadline)
            results: list[CellValues | SourceUnavailable] = []
            for cell in cells:
                answer = answers[(cell.indicator, cell.unit_code, cell.period)]
                if isinstance(answer, SourceFailure):
                    results.append(unavailable(name, answer.kind))
                else:
                    age = None if answer.stale_age is None else int(answer.stale_age)
                    results.append(CellValues(name, answer.values, age))
            return results

        return batch
