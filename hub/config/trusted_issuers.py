"""Trusted external issuers in configuration: the ``[[trusted_issuer]]`` tables of the settings file.

Checked when the settings are loaded, so a misspelt key, an HMAC algorithm, a JWKS fetched over
plain HTTP from another host, or a mapping to a scope that writes stops the start with one line
naming it (README, "External issuers", has a complete example).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from nrhub.auth.external import ALGORITHMS, TrustedIssuer
from nrhub.auth.scopes import is_reading
from nrhub.config.errors import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_KEYS = {
    "name",
    "issuer",
    "jwks_uri",
    "algorithms",
    "claim",
    "grants",
    "audience",
    "client_claim",
    "keys_ttl",
    "timeout",
}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def parse_trusted_issuers(raw: Any, where: str) -> tuple[TrustedIssuer, ...]:
    """The ``trusted_issuer`` array of tables, checked; ``where`` names the file."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError(f"{where}: trusted issuers are written as [[trusted_issuer]] tables")
    issuers = [_issuer(table, f"{where}: [[trusted_issuer]] #{n}") for n, table in enumerate(raw, 1)]
    for field in ("name", "issuer"):
        values = [getattr(i, field) for i in issuers]
        for value in values:
            if values.count(value) > 1:
                raise ConfigError(f"{where}: two trusted issuers have the {field} {value!r}")
    return tuple(issuers)


def _issuer(table: dict[str, Any], where: str) -> TrustedIssuer:
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: name must be lower-case letters, digits, '-' or '_'")
    where = f"{where.rsplit(':', 1)[0]}: trusted issuer {name}"
    for key in table:
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}")
    issuer = _url(table, "issuer", where, required=True)
    jwks_uri = _url(table, "jwks_uri", where, required=True)
    # Keys fetched over plain HTTP could be swapped on the way: only from this machine.
    if not jwks_uri.startswith("https://") and urlsplit(jwks_uri).hostname not in _LOOPBACK:
        raise ConfigError(f"{where}: jwks_uri must be https:// (plain http only on 127.0.0.1)")
    algorithms = table.get("algorithms", ["RS256", "ES256"])
    if not isinstance(algorithms, list) or not algorithms or not all(a in ALGORITHMS for a in algorithms):
        raise ConfigError(f"{where}: algorithms must be a list of {', '.join(sorted(ALGORITHMS))}")
    claim = table.get("claim", "scope")
    client_claim = table.get("client_claim", "client_id")
    for key, value in (("claim", claim), ("client_claim", client_claim)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: {key} must name a claim")
    return TrustedIssuer(
        name=name,
        issuer=issuer,
        jwks_uri=jwks_uri,
        algorithms=tuple(algorithms),
        claim=claim,
        grants=_grants(table.get("grants"), where),
        audience=_url(table, "audience", where, required=False) or None,
        client_claim=client_claim,
        keys_ttl=_seconds(table, "keys_ttl", 300.0, where),
        timeout=_seconds(table, "timeout", 3.0, where),
    )


def _grants(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: [trusted_issuer.grants] must map claim values to the hub's scopes")
    grants = {}
    for value, scopes in raw.items():
        if not isinstance(scopes, str) or not scopes.split():
            raise ConfigError(f"{where}: grants for {value!r} must be a space-separated string of scopes")
        for scope in scopes.split():
            if not is_reading(scope):
                raise ConfigError(
                    f"{where}: {scope!r} (for {value!r}) is not a reading scope; an external issuer may grant "
                    "catalog:read, data:read, indicator:*, field:* and region:* only"
                )
        grants[value] = tuple(dict.fromkeys(scopes.split()))
    return grants


def _url(table: dict[str, Any], key: str, where: str, *, required: bool) -> str:
    value = table.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ConfigError(f"{where}: {key} must be an http(s) URL")
    return value


def _seconds(table: dict[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 86_400:
        raise ConfigError(f"{where}: {key} must be a number of seconds between 0 and 86400")
    return float(value)
