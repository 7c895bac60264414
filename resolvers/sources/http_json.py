"""The ``http`` kind: a JSON API reached through a URL template and read through a field mapping.

``{units}`` and ``{periods}`` become comma-separated lists; ``{indicator}`` the upstream's name
of one indicator (one call per indicator), or ``{indicators}`` all of them (one call in all, the
rows then saying which indicator each value belongs to). With ``method = "POST"`` the lists go in
a JSON body instead, and the call is retried only when the source is declared idempotent.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from nrhub.resolvers.sources.config import (
    FieldMapping,
    SourceConfig,
    SourceConfigError,
    parse_headers,
    parse_mapping,
    parse_url,
)
from nrhub.resolvers.sources.transport import exchange, new_client
from nrhub.resolvers.sources.values import Question, SourceValue, read_rows, rows_at

KEYS = frozenset({"url", "method", "headers", "idempotent", "mapping"})
_PLACEHOLDERS = {"indicator", "indicators", "units", "periods"}


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """A JSON API: a URL template with ``{indicator}`` or ``{indicators}``, ``{units}``, ``{periods}``."""

    url: str
    mapping: FieldMapping
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    idempotent: bool = True

    @property
    def batches_indicators(self) -> bool:
        return "{indicators}" in self.url or self.method == "POST"


def parse_target(table: Mapping[str, Any]) -> HttpTarget:
    """``url`` (a template), ``method``, ``idempotent``, ``headers`` and ``[source.mapping]``."""
    url = parse_url(table)
    method = table.get("method", "GET")
    if method not in ("GET", "POST"):
        raise SourceConfigError("method must be GET or POST")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(url) if f is not None}
    except ValueError:
        raise SourceConfigError("url is not a valid template (braces must pair)") from None
    if fields - _PLACEHOLDERS:
        raise SourceConfigError("url may use only {indicator}, {indicators}, {units} and {periods}")
    idempotent = table.get("idempotent", method == "GET")
    if not isinstance(idempotent, bool):
        raise SourceConfigError("idempotent must be true or false")
    mapping = parse_mapping(table.get("mapping", {}))
    target = HttpTarget(url, mapping, method, parse_headers(table.get("headers", {})), idempotent)
    if target.batches_indicators and mapping.indicator is None:
        raise SourceConfigError("one call answers several indicators, so [source.mapping] needs indicator")
    return target


class HttpConnector:
    def __init__(self, config: SourceConfig) -> None:
        assert isinstance(config.target, HttpTarget)
        self.target = config.target
        self.policy = config.policy
        self.names = {remote: code for code, remote in config.indicators}
        self.remote = dict(config.indicators)
        self.idempotent = self.target.idempotent
        self.batches_indicators = self.target.batches_indicators
        self.client = new_client(config.policy.timeout, config.policy.max_concurrency)

    async def ask(self, question: Question) -> list[SourceValue]:
        payload = await exchange(self.client, self._request(question), self.policy.max_bytes)
        rows = rows_at(payload, self.target.mapping.rows)
        return read_rows(rows, self.target.mapping, question, names=self.names, default_status=self.policy.status)

    def _request(self, question: Question) -> httpx.Request:
        names = [self.remote[code] for code in question.indicators]
        headers = dict(self.target.headers)
        if self.target.method == "POST":
            body = {"indicators": names, "units": list(question.units), "periods": list(question.periods)}
            return self.client.build_request("POST", self.target.url, json=body, headers=headers)
        url = self.target.url.format(
            indicator=quote(names[0], safe=""),
            indicators=quote(",".join(names), safe=","),
            units=quote(",".join(question.units), safe=","),
            periods=quote(",".join(question.periods), safe=","),
        )
        return self.client.build_request("GET", url, headers=headers)

    async def close(self) -> None:
        await self.client.aclose()
