"""The connector registry: every kind of federated source, declared once.

A kind is what ``kind = "…"`` names in a ``[[source]]`` table: the keys such a table may have
beyond the common ones, how they are checked and become the connector's target, and the connector
class that answers for it. Everything that knows about kinds reads ``KINDS``: configuration parsing
(hub/config/sources.py), opening the process's sources (registry.py) and the schema's ``SourceKind`` enum
(schema/sources.py). So a new kind is one connector module and one ``register`` call here, and a
kind cannot be parsed without being served, nor served without being in the schema (where a
missing enum value would make the ``sources`` query answer INTERNAL).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nrhub.resolvers.sources import http_json, postgres, remote_graphql
from nrhub.resolvers.sources.config import SourceConfig
from nrhub.resolvers.sources.source import Connector

# Lower case, so that its upper-case form is a GraphQL enum value (SourceKind.POSTGRES).
_KIND_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class ConnectorKind:
    """One kind of source."""

    name: str
    keys: frozenset[str]  # the keys of its [[source]] tables beyond name, kind, indicators and the policy
    parse: Callable[[Mapping[str, Any]], object]  # those keys, checked, as the target; raises SourceConfigError
    connector: Callable[[SourceConfig], Connector]


KINDS: dict[str, ConnectorKind] = {}


def register(kind: ConnectorKind) -> ConnectorKind:
    """Add a kind; before the schema is imported, so that its enum holds it."""
    if not _KIND_NAME.match(kind.name):
        raise ValueError(f"a source kind is named in lower-case letters, digits and '_', not {kind.name!r}")
    if kind.name in KINDS:
        raise ValueError(f"the source kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


# In this order in the schema's SourceKind enum (schema.graphql).
register(ConnectorKind("postgres", postgres.KEYS, postgres.parse_target, postgres.PostgresConnector))
register(ConnectorKind("http", http_json.KEYS, http_json.parse_target, http_json.HttpConnector))
register(ConnectorKind("graphql", remote_graphql.KEYS, remote_graphql.parse_target, remote_graphql.GraphQLConnector))
