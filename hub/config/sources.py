"""Federated sources in configuration: the ``[[source]]`` tables of the settings file.

``parse_sources`` reads and checks them when the settings are loaded, so a misspelt key or a
malformed query stops the start with one line naming it (README, Federation, has a complete
example). ``open_registry`` builds the sources in the app's lifespan; nothing connects until a
request needs a source, so a source that is down never stops the hub.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from nrhub.config.errors import ConfigError
from nrhub.resolvers.observations import STATUSES
from nrhub.resolvers.sources.config import Policy, SourceConfig, SourceConfigError
from nrhub.resolvers.sources.connectors import KINDS
from nrhub.resolvers.sources.postgres import PostgresTarget
from nrhub.resolvers.sources.registry import SourceRegistry, open_sources

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")  # as indicator.source (migration 0001)
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
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
    named = table.get("kind")
    kind = KINDS.get(named) if isinstance(named, str) else None
    if kind is None:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}")
    known = {"name", "kind", "indicators", "status", *_POLICY, *kind.keys}
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}")
    indicators = _indicators(table.get("indicators"), where)
    try:
        target = kind.parse({key: value for key, value in table.items() if key in kind.keys})
    except SourceConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return SourceConfig(name, kind.name, indicators, target, _policy(table, where))


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
