"""An optional TTL cache of a source's answers, one entry per indicator x unit x period (every
disaggregation of that cell together, or none when the source has no value).

Fresh entries (younger than ``ttl``) are served without calling the source. Older ones are kept,
up to ``max_stale``, for one purpose: when the source fails or its circuit is open, they are
served marked stale with their age, rather than nothing. Entries live in this process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nrhub.resolvers.sources.values import SourceValue

CellKey = tuple[str, str, str]  # indicator, unit code, period


@dataclass(frozen=True, slots=True)
class Entry:
    values: tuple[SourceValue, ...]
    stored_at: float


class ValueCache:
    def __init__(
        self, ttl: float, max_stale: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_stale = max(max_stale, ttl)
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[CellKey, Entry] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, key: CellKey) -> tuple[SourceValue, ...] | None:
        entry = self._get(key)
        if entry is None or self.clock() - entry.stored_at >= self.ttl:
            return None
        return entry.values

    def stale(self, key: CellKey) -> tuple[tuple[SourceValue, ...], float] | None:
        """The entry and its age in seconds, while it is younger than ``max_stale``."""
        entry = self._get(key)
        if entry is None:
            return None
        age = self.clock() - entry.stored_at
        return (entry.values, age) if age < self.max_stale else None

    def store(self, items: Iterable[tuple[CellKey, tuple[SourceValue, ...]]]) -> None:
        if not self.enabled:
            return
        now = self.clock()
        for key, values in items:
            self._entries[key] = Entry(values, now)
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def _get(self, key: CellKey) -> Entry | None:
        if not self.enabled:
            return None
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry
