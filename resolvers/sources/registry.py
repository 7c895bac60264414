"""The sources of one hub process, built from configuration in the app's lifespan and closed with it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

from nrhub.resolvers.sources.config import SourceConfig
from nrhub.resolvers.sources.connectors import KINDS
from nrhub.resolvers.sources.source import Connector, Source


class SourceRegistry:
    """Every configured source by name; ``request_budget`` is how long one request may spend on them."""

    def __init__(self, sources: Iterable[Source], request_budget: float) -> None:
        self._sources = {source.name: source for source in sources}
        self.request_budget = request_budget

    def get(self, name: str) -> Source | None:
        return self._sources.get(name)

    def __iter__(self) -> Iterator[Source]:
        return iter(sorted(self._sources.values(), key=lambda s: s.name))

    async def close(self) -> None:
        await asyncio.gather(*(source.connector.close() for source in self._sources.values()))


def open_sources(configs: Iterable[SourceConfig], *, request_budget: float) -> SourceRegistry:
    """Build every source; nothing connects yet (a source that is down must not stop the hub)."""
    sources = []
    for config in configs:
        connector: Connector = KINDS[config.kind].connector(config)
        sources.append(Source(config, connector))
    return SourceRegistry(sources, request_budget)
