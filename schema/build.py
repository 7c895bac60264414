"""The schema object. ``schema.graphql`` at the repository root is its committed print."""

from __future__ import annotations

import strawberry
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.types import Info

from nrhub.schema.catalogue import AdministrativeUnit, Agency, Indicator, Regime
from nrhub.schema.data import Observation
from nrhub.schema.entities import checked, entity_keys
from nrhub.schema.mutation import Mutation
from nrhub.schema.query import Query
from nrhub.schema.reports import Submission
from nrhub.schema.scalars import SCALAR_MAP
from nrhub.schema.subscriptions import Subscription


class _RememberedNames(NameConverter):
    """Strawberry converts every argument's name to camel case on every call of its field (for a
    point lookup, five conversions per request); a name's conversion never changes, so keep it."""

    def __init__(self) -> None:
        super().__init__(auto_camel_case=True)
        self._converted: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._converted.get(name)
        if converted is None:
            converted = self._converted[name] = super().apply_naming_config(name)
        return converted


class _FederatedSchema(strawberry.federation.Schema):
    def entities_resolver(self, info: Info, representations: list[FederationAny]) -> list[FederationAny]:
        # Malformed representations are answered BAD_USER_INPUT at their index (schema/entities.py).
        given = [checked(r, _ENTITY_KEYS) for r in representations]
        valid = [r for r in given if isinstance(r, dict)]
        resolved = iter(super().entities_resolver(info, valid) if valid else [])
        # A refusal is awaited like the lookups beside it, so every item of the list completes alike.
        return [next(resolved) if isinstance(r, dict) else _refuse(r) for r in given]  # type: ignore[misc]


async def _refuse(error: Exception) -> None:
    raise error


_TYPES = [AdministrativeUnit, Agency, Indicator, Regime, Observation, Submission]
_ENTITY_KEYS = entity_keys(_TYPES)

# A federation schema: the hub can join an Apollo Federation 2 supergraph as a subgraph
# (_service, and _entities for Indicator and AdministrativeUnit; README, Federation).
schema = _FederatedSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=_TYPES,
    config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP, name_converter=_RememberedNames()),
    federation_version="2.3",
)


def print_schema() -> str:
    return schema.as_str() + "\n"
