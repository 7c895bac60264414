"""The hub's configuration: read once, cast and validated in one object.

Sources, later ones winning: defaults, an optional TOML file (``HUB_CONFIG`` or ``--config``), then
``HUB_*`` environment variables. An unknown key in either place is an error, because a misspelt
setting that is silently ignored is worse than one that stops the start; for the same reason a file
value that a variable overrides must still be valid. This module is the only one that reads the
environment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nrhub.auth.address import parse_proxies
from nrhub.auth.external import TrustedIssuer
from nrhub.config.errors import ConfigError
from nrhub.config.sources import parse_sources
from nrhub.config.toml_files import read_toml
from nrhub.config.trusted_issuers import parse_trusted_issuers
from nrhub.resolvers.sources.config import SourceConfig


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting the hub knows, with its default. README's configuration table mirrors this."""

    database_url: str | None = None
    # Request connections' URL (README: "Database roles"); unset: database_url's with nrhub_app as its user.
    request_database_url: str | None = None
    data_dir: Path = Path(".hub-data")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    pool_min_size: int = 2
    pool_max_size: int = 10
    migrate_on_start: bool = True
    # GraphQL limits (see README: "Limits").
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 3000
    max_directives: int = 20
    max_page_size: int = 500
    max_body_bytes: int = 1_000_000
    max_string_length: int = 10_000
    execution_timeout: float = 10.0
    introspection: bool = False
    suggestions: bool = False
    compiled_plans: bool = True  # schema/plan.py; off: every query runs through graphql-core's executor
    # Off: a caller without a token reads nothing. The demo turns it on (hub/demo/sources.toml).
    public_read: bool = False
    graphiql: bool = True
    # OAuth2 (README: "Security").
    issuer: str | None = None  # default http://HOST:PORT
    audience: str | None = None  # default ISSUER/graphql
    token_lifetime: int = 900
    token_rate_limit: int = 30
    trusted_proxies: str = ""  # comma-separated IPs/CIDRs whose X-Forwarded-For is believed (auth.address)
    # Subscriptions over WebSocket (README: "Live updates").
    ws_max_subscriptions: int = 20
    ws_max_connections_per_client: int = 50
    ws_max_anonymous_connections: int = 1000  # all callers without a token together, per process
    ws_allowed_origins: str = ""  # comma-separated; the hub's own origin is always allowed
    ws_init_timeout: float = 10.0
    assets_dir: Path = Path("node_modules")
    # Connections and shutdown, per process (docs/operations.md, "Slow clients"; checked by nrhub.web.server).
    header_timeout: float = 10.0  # seconds from a request's first byte (or the connection opening) to its last header
    body_timeout: float = 30.0  # seconds a request body may pause between two chunks
    write_timeout: float = 30.0  # seconds an answer may wait for a client that does not read it
    keep_alive_timeout: int = 5  # seconds an idle kept-alive connection stays open (whole seconds: uvicorn's)
    max_connections: int = 1000  # open HTTP and WebSocket connections, lowered to fit the open-file limit
    ws_ping_interval: float = 20.0  # seconds between pings on a WebSocket; unanswered as long again: closed
    shutdown_timeout: int = 5  # seconds running requests get to finish on SIGTERM; the rest are answered 503
    # Reminders and webhooks (docs/reports.md, "Reminders and webhooks"; docs/operations.md).
    reminders: bool = True  # run the reminder scheduler (one leader per database)
    reminder_interval: float = 60.0  # seconds between the leader's runs
    reminder_lead_days: int = 3  # a BEFORE_DEADLINE reminder this many days ahead
    reminder_overdue_days: int = 7  # OVERDUE reminders for deadlines passed at most this many days ago
    webhook_timeout: float = 10.0  # seconds one delivery attempt may take
    webhook_max_attempts: int = 8
    webhook_retry_base: float = 30.0  # seconds before the 2nd attempt, doubling after each failure
    webhook_allow_loopback: bool = False  # let webhooks reach 127.0.0.1/::1 (development only)
    webhook_allowed_networks: str = ""  # comma-separated private CIDRs webhooks may reach
    # Federated sources: the [[source]] tables of the TOML file only (README: "Federation").
    sources: tuple[SourceConfig, ...] = ()
    # External issuers whose tokens are accepted: [[trusted_issuer]] tables (README: "External issuers").
    trusted_issuers: tuple[TrustedIssuer, ...] = ()

    @property
    def issuer_url(self) -> str:
        """The OAuth issuer identifier (RFC 8414): configured, or this hub's own address."""
        return (self.issuer or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def audience_id(self) -> str:
        """The resource identifier access tokens are issued for (RFC 9068 aud), not a client id."""
        return self.audience or f"{self.issuer_url}/graphql"

    @property
    def embedded(self) -> bool:
        """True when the hub runs its own PostgreSQL instead of a configured server."""
        return self.database_url is None

    def replace(self, **changes: Any) -> Settings:
        return _validated(dataclasses.replace(self, **changes))


ENV_PREFIX = "HUB_"
# Read by the hub but not settings: the config file's path, and the test suite's server.
_ENV_NOT_SETTINGS = {"HUB_CONFIG", "HUB_TEST_DATABASE_URL"}
# Settings that only the TOML file's own tables set (not [hub], not the environment).
TABLE_SETTINGS = {"sources", "trusted_issuers"}


def load_settings(config_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the TOML file and the environment."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("HUB_CONFIG")
    from_file: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    if config_file:
        from_file = _read_toml(Path(config_file))
        tables = {name: from_file.pop(name) for name in TABLE_SETTINGS}
    from_environ, variables = _read_environ(environ)
    settings = _built({**from_file, **from_environ}, tables)
    overriding = {key: name for key, name in variables.items() if key in from_file}
    if overriding:
        _check_file_alone(Path(str(config_file)), from_file, from_environ, overriding, tables)
    return settings


def _read_environ(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The settings the HUB_* variables give, and the variable that gives each."""
    known = {f.name for f in fields(Settings)} - TABLE_SETTINGS
    values, variables = {}, {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in known:
            raise ConfigError(f"unknown setting {name} in the environment")
        values[key], variables[key] = raw, name
    return values, variables


def _built(values: Mapping[str, Any], tables: Mapping[str, Any]) -> Settings:
    return _validated(Settings(**{k: _cast(k, v) for k, v in values.items()}, **tables))


def _check_file_alone(
    path: Path,
    from_file: Mapping[str, Any],
    from_environ: Mapping[str, str],
    overriding: Mapping[str, str],
    tables: Mapping[str, Any],
) -> None:
    """The file must be valid without the variables that override its values: one removed later must
    not be how the operator learns that the file was broken all along."""
    try:
        _built({**from_environ, **from_file}, tables)
    except ConfigError as exc:
        named = [key for key in overriding if re.search(rf"\b{key}\b", str(exc))] or list(overriding)
        values = ", ".join(f"{key} = {_shown(key, from_file[key])}" for key in named)
        names = ", ".join(overriding[key] for key in named)
        them = "it" if len(named) == 1 else "them"
        raise ConfigError(
            f"config file {path}: invalid {values} ({exc}), overridden by {names}; fix or remove {them} in the file"
        ) from None


def _shown(key: str, value: Any) -> str:
    """A file's value as written in TOML; a URL's is not shown, for it may hold a password."""
    if key.endswith("_url"):
        return "(not shown)"
    return json.dumps(value) if isinstance(value, (str, bool, int, float)) else repr(value)


def _read_toml(path: Path) -> dict[str, Any]:
    data = read_toml(path, ConfigError, "config file")
    hub = data.get("hub", {})
    if not isinstance(hub, dict):
        raise ConfigError(f"config file {path}: [hub] must be a table")
    # Other top-level tables belong to later features (OAuth); they validate their own.
    known = {f.name for f in fields(Settings)} - TABLE_SETTINGS
    for key in hub:
        if key not in known:
            raise ConfigError(f"unknown setting {key!r} in [hub] of {path}")
    sources = parse_sources(data["source"], str(path)) if "source" in data else ()
    trusted = parse_trusted_issuers(data["trusted_issuer"], str(path)) if "trusted_issuer" in data else ()
    return {**hub, "sources": sources, "trusted_issuers": trusted}


def _cast(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            lowered = str(raw).strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes", "on"}
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(str(raw))
        if kind == "str | None":
            return str(raw) or None
        return str(raw)
    except ValueError:
        raise ConfigError(f"setting {name} must be of type {kind}, got {raw!r}") from None


def _validated(settings: Settings) -> Settings:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"setting port must be between 1 and 65535, got {settings.port}")
    if settings.database_url is not None:
        _check_database_url(settings.database_url)
    if settings.request_database_url is not None:
        if settings.database_url is None:
            raise ConfigError("setting request_database_url needs database_url (the embedded server needs neither)")
        _check_database_url(settings.request_database_url, "request_database_url")
    if not 1 <= settings.pool_min_size <= settings.pool_max_size:
        raise ConfigError("settings need 1 <= pool_min_size <= pool_max_size")
    if settings.log_level not in {"debug", "info", "warning", "error"}:
        raise ConfigError("setting log_level must be debug, info, warning or error")
    positive = (
        "max_depth",
        "max_aliases",
        "max_tokens",
        "max_directives",
        "max_page_size",
        "max_body_bytes",
        "max_string_length",
        "ws_max_subscriptions",
        "ws_max_connections_per_client",
        "ws_max_anonymous_connections",
        "ws_init_timeout",
        "header_timeout",
        "body_timeout",
        "write_timeout",
        "keep_alive_timeout",
        "max_connections",
        "ws_ping_interval",
        "shutdown_timeout",
        "execution_timeout",
        "reminder_interval",
        "reminder_lead_days",
        "reminder_overdue_days",
        "webhook_timeout",
        "webhook_max_attempts",
        "webhook_retry_base",
    )
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"setting {name} must be positive")
    # RFC 9068 tokens are bearer credentials: keep them short-lived (at most one hour).
    if not 60 <= settings.token_lifetime <= 3600:
        raise ConfigError("setting token_lifetime must be between 60 and 3600 seconds")
    if settings.token_rate_limit <= 0:
        raise ConfigError("setting token_rate_limit must be positive")
    try:
        parse_proxies(settings.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"setting trusted_proxies: {exc}") from None
    try:
        parse_proxies(settings.webhook_allowed_networks)
    except ValueError as exc:
        raise ConfigError(f"setting webhook_allowed_networks: {exc}") from None
    for name in ("issuer", "audience"):
        value = getattr(settings, name)
        if value is not None and not value.startswith(("https://", "http://")):
            raise ConfigError(f"setting {name} must be an http(s) URL")
    for trusted in settings.trusted_issuers:
        if trusted.issuer.rstrip("/") == settings.issuer_url:
            raise ConfigError(f"trusted issuer {trusted.name} is the hub itself ({trusted.issuer})")
    return settings


def _check_database_url(url: str, name: str = "database_url") -> None:
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"setting {name} must be a postgresql:// URL")
    try:
        urlsplit(url).port  # noqa: B018 - parsing is the check: a port out of range raises
    except ValueError as exc:
        raise ConfigError(f"setting {name} is malformed: {exc}") from None
