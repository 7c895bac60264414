"""Per-request DataLoaders, named ``<thing>_by_<key>``: one statement per relation per request."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiodataloader import DataLoader

from resolvers.agencies import fetch_agencies, fetch_agencies_by_unit
from resolvers.indicators import (
    fetch_fields,
    fetch_indicators,
    list_dimensions,
    list_indicators_by_agency,
)
from resolvers.observations import fetch_observations
from resolvers.queryable import Queryable
from resolvers.regimes import fetch_regimes, list_items, list_reporters
from resolvers.scope import Scope
from resolvers.sources.loaders import SourceLoaders
from resolvers.sources.registry import SourceRegistry
from resolvers.units import (
    fetch_units_by_id,
    list_children,
    list_predecessors,
    list_successors,
)


def _loader(fetch: Any, db: Queryable, *extra: Any) -> DataLoader:
    """A loader calling ``fetch(db, keys, *extra)`` once per batch of keys."""

    async def batch(keys: list[Any]) -> list[Any]:
        return list(await fetch(db, keys, *extra))

    return DataLoader(batch_load_fn=batch)


class Loaders:
    """Created for each request: caches live exactly as long as the request."""

    def __init__(self, db: Queryable, scope: Scope, today: date, sources: SourceRegistry | None = None) -> None:
        self.unit_by_id = _loader(fetch_units_by_id, db)
        self.children_by_unit = _loader(list_children, db, today)
        self.predecessors_by_unit = _loader(list_predecessors, db)
        self.successors_by_unit = _loader(list_successors, db)
        self.agency_by_code = _loader(fetch_agencies, db)
        self.agency_by_unit = _loader(fetch_agencies_by_unit, db)
        self.indicator_by_code = _loader(fetch_indicators, db, scope)
        self.indicators_by_agency = _loader(list_indicators_by_agency, db, scope)
        self.dimensions_by_indicator = _loader(list_dimensions, db)
        self.field_by_code = _loader(fetch_fields, db)
        self.regime_by_code = _loader(fetch_regimes, db)
        self.reporters_by_regime = _loader(list_reporters, db)
        self.items_by_regime = _loader(list_items, db, scope.indicators)
        self.observation_by_revision = _loader(fetch_observations, db, scope)
        # One loader per federated source, created when the request first needs it.
        self.sources = SourceLoaders(sources, scope)
