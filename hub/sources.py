"""Federated sources in configuration: the ``[[source]]`` tables of the settings file.

``parse_sources`` reads and checks them when the settings are loaded, so a misspelt key or a
malformed query stops the start with one line naming it (README, Federation, has a complete
example). ``open_registry`` builds the sources in the app's lifespan; nothing connects until a
request needs a source, so a source that is down never stops the hub.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

from hub.settings import ConfigError
from resolvers.observations import STATUSES
from resolvers.sources.config import (
    KINDS,
    FieldMapping,
    GraphQLTarget,
    HttpTarget,
    Policy,
    PostgresTarget,
    SourceConfig,
    Target,
)
from resolvers.sources.registry import SourceRegistry, open_sources

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")  # as indicator.source (migration 0001)
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PLACEHOLDERS = {"indicator", "indicators", "units", "periods"}
_KIND_KEYS = {
    "postgres": {"url", "database", "pool_size"},
    "http": {"url", "method", "headers", "idempotent", "mapping"},
    "graphql": {"url", "query", "headers", "mapping"},
}
# Policy keys: (type, lowest allowed, highest allowed)
_POLICY: dict[str, tuple[type, float, float]] = {
    "timeout": (float, 0.001, 600),
    "max_concurrency": (int, 1, 1000),
    "retries": (int, 0, 5),
    "retry_backoff": (float, 0, 60),
    "breaker_failures": (int, 1, 1000),
    "breaker_cooldown": (float, 0.001, 86_400),
    "cache_ttl": (float, 0, 86_400 * 30),
    "max_stale": (float, 0, 86_400 * 30),
    "cache_entries": (int, 1, 10_000_000),
    "max_bytes": (int, 1, 1_000_000_000),
    "latest_window": (int, 1, 240),
    "batch_window": (float, 0, 1),
    "max_units": (int, 0, 100_000),
}
_MAPPING_KEYS = {"rows", "unit", "period", "value", "dims", "status", "indicator"}


def parse_sources(raw: Any, where: str) -> tuple[SourceConfig, ...]:
    """The ``source`` array of tables of a settings file, checked; ``where`` names the file."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError(f"{where}: sources are written as [[source]] tables")
    configs = [_source(table, f"{where}: [[source]] #{n}") for n, table in enumerate(raw, 1)]
    names = [c.name for c in configs]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{where}: two sources are named {name!r}")
    return tuple(configs)


def open_registry(
    configs: Iterable[SourceConfig], hub_database_url: str, *, execution_timeout: float
) -> SourceRegistry:
    """The process's sources; a postgres source given as ``database`` lives on the hub's own server."""
    resolved = []
    for config in configs:
        target = config.target
        if isinstance(target, PostgresTarget) and not target.url.startswith(("postgresql://", "postgres://")):
            target = dataclasses.replace(target, url=same_server(hub_database_url, target.url))
            config = dataclasses.replace(config, target=target)
        resolved.append(config)
    # Leave the request time to finish answering after its sources gave up (schema/execution.py).
    budget = max(0.1, execution_timeout - min(1.0, execution_timeout * 0.2))
    return open_sources(resolved, request_budget=budget)


def same_server(url: str, database: str) -> str:
    """The URL of another database on the server of ``url``."""
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


def _source(table: dict[str, Any], where: str) -> SourceConfig:
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name == "hub":
        raise ConfigError(f"{where}: name must be lower-case letters, digits, '-' or '_' (and not 'hub')")
    where = f"{where.rsplit(':', 1)[0]}: source {name}"
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}")
    known = {"name", "kind", "indicators", "status", *_POLICY, *_KIND_KEYS[kind]}
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}")
    indicators = _indicators(table.get("indicators"), where)
    target = {"postgres": _postgres, "http": _http, "graphql": _graphql}[kind](table, where)
    return SourceConfig(name, kind, indicators, target, _policy(table, where))


def _indicators(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: [source.indicators] must map indicator codes to what to ask for")
    for code, value in raw.items():
        if not _CODE.match(code):
            raise ConfigError(f"{where}: {code!r} is not an indicator code")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: indicator {code} needs a non-empty string")
    return tuple(sorted(raw.items()))


def _policy(table: dict[str, Any], where: str) -> Policy:
    values: dict[str, Any] = {}
    for key, (kind, low, high) in _POLICY.items():
        if key not in table:
            continue
        raw = table[key]
        if isinstance(raw, bool) or not isinstance(raw, int | float) or (kind is int and not isinstance(raw, int)):
            raise ConfigError(f"{where}: {key} must be {'an integer' if kind is int else 'a number'}")
        if not low <= raw <= high:
            raise ConfigError(f"{where}: {key} must be between {low:g} and {high:g}")
        values[key] = kind(raw)
    status = table.get("status", "OFFICIAL")
    if status not in STATUSES:
        raise ConfigError(f"{where}: status must be one of {', '.join(STATUSES)}")
    return Policy(**values, status=status)


def _url(table: dict[str, Any], where: str) -> str:
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: url must be an http:// or https:// URL")
    return url


def _postgres(table: dict[str, Any], where: str) -> Target:
    url, database = table.get("url"), table.get("database")
    if (url is None) == (database is None):
        raise ConfigError(f"{where}: give either url (postgresql://…) or database (on the hub's own server)")
    if url is not None and (not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://"))):
        raise ConfigError(f"{where}: url must be a postgresql:// URL")
    if database is not None and (not isinstance(database, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", database)):
        raise ConfigError(f"{where}: database must be a plain database name")
    pool_size = table.get("pool_size", 2)
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or not 1 <= pool_size <= 100:
        raise ConfigError(f"{where}: pool_size must be an integer from 1 to 100")
    return PostgresTarget(url or database, pool_size)


def _http(table: dict[str, Any], where: str) -> Target:
    url = _url(table, where)
    method = table.get("method", "GET")
    if method not in ("GET", "POST"):
        raise ConfigError(f"{where}: method must be GET or POST")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(url) if f is not None}
    except ValueError:
        raise ConfigError(f"{where}: url is not a valid template (braces must pair)") from None
    if fields - _PLACEHOLDERS:
        raise ConfigError(f"{where}: url may use only {{indicator}}, {{indicators}}, {{units}} and {{periods}}")
    idempotent = table.get("idempotent", method == "GET")
    if not isinstance(idempotent, bool):
        raise ConfigError(f"{where}: idempotent must be true or false")
    mapping = _mapping(table.get("mapping", {}), where)
    target = HttpTarget(url, mapping, method, _headers(table.get("headers", {}), where), idempotent)
    if target.batches_indicators and mapping.indicator is None:
        raise ConfigError(f"{where}: one call answers several indicators, so [source.mapping] needs indicator")
    return target


def _graphql(table: dict[str, Any], where: str) -> Target:
    url = _url(table, where)
    query = table.get("query")
    if not isinstance(query, str):
        raise ConfigError(f"{where}: query must be a GraphQL query document")
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise ConfigError(f"{where}: query does not parse: {exc.message}") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        raise ConfigError(f"{where}: query must hold exactly one query operation (never a mutation)")
    variables = {v.variable.name.value for v in operations[0].variable_definitions or ()}
    batches = "indicators" in variables
    if not {"units", "periods"} <= variables or batches == ("indicator" in variables):
        raise ConfigError(f"{where}: query must declare $units, $periods and one of $indicator or $indicators")
    mapping = _mapping(table.get("mapping", {}), where)
    if batches and mapping.indicator is None:
        raise ConfigError(f"{where}: with $indicators, [source.mapping] needs indicator")
    return GraphQLTarget(url, query, mapping, batches, _headers(table.get("headers", {}), where))


def _mapping(raw: Any, where: str) -> FieldMapping:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [source.mapping] must be a table")
    for key, value in raw.items():
        if key not in _MAPPING_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r} in [source.mapping]")
        if not isinstance(value, str) or (key != "rows" and not value):
            raise ConfigError(f"{where}: mapping {key} must be a field name")
    rows = tuple(p for p in raw.get("rows", "").split(".") if p)
    fields = {k: v for k, v in raw.items() if k != "rows"}
    return FieldMapping(rows=rows, **fields)


def _headers(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(f"{where}: headers must map names to strings")
    return tuple(sorted(raw.items()))
