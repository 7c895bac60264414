"""Per-request DataLoaders, named ``<thing>_by_<key>``: one statement per relation per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from aiodataloader import DataLoader

from nrhub.resolvers.agencies import fetch_agencies, fetch_agencies_by_unit
from nrhub.resolvers.consolidation import fetch_consolidated_from
from nrhub.resolvers.federated_indicators import HUB, FederatedIndicators
from nrhub.resolvers.indicators import (
    fetch_fields,
    fetch_indicators,
    list_dimensions,
    list_indicators_by_agency,
)
from nrhub.resolvers.observations import fetch_observations
from nrhub.resolvers.period_locks import locks_of
from nrhub.resolvers.queryable import Queryable
from nrhub.resolvers.regimes import fetch_regimes, list_items, list_reporters
from nrhub.resolvers.scope import Scope
from nrhub.resolvers.sources.loaders import SourceLoaders
from nrhub.resolvers.sources.registry import SourceRegistry
from nrhub.resolvers.units import (
    fetch_units_by_id,
    list_children,
    list_predecessors,
    list_successors,
)


class _PerRequest:
    """A loader made on first use within a request, calling ``fetch(db, keys, *extra)`` once per batch.

    ``extra`` names attributes of the Loaders (``today``, ``scope``, ``readable``). Most requests touch
    one or two relations, and building all of them for every request cost more than a point lookup's
    own statement. A non-data descriptor: the loader it makes is stored on the instance, which then
    answers every later access directly.
    """

    def __init__(self, fetch: Callable[..., Awaitable[Any]], *extra: str) -> None:
        self.fetch = fetch
        self.extra = extra
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loaders: Loaders | None, owner: type | None = None) -> Any:
        if loaders is None:
            return self
        db, extra, fetch = loaders.db, [getattr(loaders, a) for a in self.extra], self.fetch

        async def batch(keys: list[Any]) -> list[Any]:
            return list(await fetch(db, keys, *extra))

        loader = loaders.__dict__[self.name] = DataLoader(batch_load_fn=batch)
        return loader


class Loaders:
    """Created for each request: caches live exactly as long as the request."""

    unit_by_id = _PerRequest(fetch_units_by_id)
    children_by_unit = _PerRequest(list_children, "today")
    predecessors_by_unit = _PerRequest(list_predecessors)
    successors_by_unit = _PerRequest(list_successors)
    agency_by_code = _PerRequest(fetch_agencies)
    agency_by_unit = _PerRequest(fetch_agencies_by_unit)
    indicator_by_code = _PerRequest(fetch_indicators, "scope")
    indicators_by_agency = _PerRequest(list_indicators_by_agency, "scope")
    dimensions_by_indicator = _PerRequest(list_dimensions)
    field_by_code = _PerRequest(fetch_fields)
    regime_by_code = _PerRequest(fetch_regimes)
    reporters_by_regime = _PerRequest(list_reporters)
    items_by_regime = _PerRequest(list_items, "readable")
    observation_by_revision = _PerRequest(fetch_observations, "scope")
    consolidated_from_by_revision = _PerRequest(fetch_consolidated_from)
    lock_by_report = _PerRequest(locks_of)

    def __init__(
        self,
        db: Queryable,
        scope: Scope,
        today: date,
        sources: SourceRegistry | None = None,
        federated: FederatedIndicators | None = None,
    ) -> None:
        self.db = db
        self.scope = scope
        self.readable = scope.indicators
        self.today = today
        # One loader per federated source, created when the request first needs it.
        self.sources = SourceLoaders(sources, scope)
        self._federated = federated

    async def source_of(self, indicator: str) -> str:
        """Who serves a readable indicator's values: ``hub``, or the name of a federated source.

        From the process's map when there is one (nrhub.web.app), else from the catalogue in this request.
        """
        if self._federated is not None:
            return await self._federated.source_of(indicator)
        row = await self.indicator_by_code.load(indicator)
        return row.source if row is not None else HUB
