"""Which indicators a federated source serves, known in each hub process.

The point lookup reads one stored value by its key. Asking the catalogue in the same statement
whether a source serves the indicator instead (its stored values then do not count) put a second
relation in that statement: a fifth of PostgreSQL's time for it (bench/README.md). The answer is
small (the indicators whose ``source`` is not ``hub``) and changes only with the catalogue, so each
process reads it once and keeps it until told otherwise.

It is told by PostgreSQL: a trigger on ``indicator`` notifies ``hub_catalogue`` at every commit
that changes the table (migration 0010), and the process's listening connection (resolvers.events)
calls ``forget``. While that connection is down a change could go unheard, so the map is then read
again on every use; a change therefore reaches each process as soon as its notification arrives.
"""

from __future__ import annotations

import asyncpg

CATALOGUE_CHANNEL = "hub_catalogue"
HUB = "hub"
_SELECT_FEDERATED = "SELECT code, source FROM indicator WHERE source <> 'hub'"


class FederatedIndicators:
    """The source of every indicator a federated source serves; any other indicator is the hub's."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._known: dict[str, str] | None = None
        # Bumped by every forget, so that a read which began before a change is not kept after it.
        self._generation = 0
        self._listening = False

    async def source_of(self, indicator: str) -> str:
        known = self._known
        if known is None:
            known = await self._read()
        return known.get(indicator, HUB)

    def forget(self) -> None:
        """The catalogue changed, or may have: read it again when next asked."""
        self._generation += 1
        self._known = None

    def listening(self, live: bool) -> None:
        """Whether a change would be heard now; changes made while it was not are unknown."""
        self._listening = live
        self.forget()

    async def _read(self) -> dict[str, str]:
        generation = self._generation
        known = {code: source for code, source in await self._pool.fetch(_SELECT_FEDERATED)}
        if self._listening and generation == self._generation:
            self._known = known
        return known
