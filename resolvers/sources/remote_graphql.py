"""The ``graphql`` kind: a remote GraphQL endpoint, one configured query, read through a field mapping.

The query receives ``$units`` and ``$periods`` (lists of strings) and ``$indicator`` (one call per
indicator) or ``$indicators`` (one call in all). Only query operations are accepted in the
configuration, so a call is safe to repeat. An answer with ``errors`` is refused whole: the hub
cannot tell which of its values the errors touch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

from nrhub.resolvers.sources.config import (
    FieldMapping,
    SourceConfig,
    SourceConfigError,
    parse_headers,
    parse_mapping,
    parse_url,
)
from nrhub.resolvers.sources.failures import SourceMalformed, SourceUpstreamError
from nrhub.resolvers.sources.transport import exchange, new_client
from nrhub.resolvers.sources.values import Question, SourceValue, read_rows, rows_at

_ACCEPT = "application/graphql-response+json, application/json;q=0.9"
KEYS = frozenset({"url", "query", "headers", "mapping"})


@dataclass(frozen=True, slots=True)
class GraphQLTarget:
    """A remote GraphQL endpoint and one query, with ``$indicator`` or ``$indicators``, ``$units``, ``$periods``."""

    url: str
    query: str
    mapping: FieldMapping
    batches_indicators: bool = False
    headers: tuple[tuple[str, str], ...] = ()


def parse_target(table: Mapping[str, Any]) -> GraphQLTarget:
    """``url``, ``query`` (one query operation), ``headers`` and ``[source.mapping]``."""
    url = parse_url(table)
    query = table.get("query")
    if not isinstance(query, str):
        raise SourceConfigError("query must be a GraphQL query document")
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise SourceConfigError(f"query does not parse: {exc.message}") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        raise SourceConfigError("query must hold exactly one query operation (never a mutation)")
    variables = {v.variable.name.value for v in operations[0].variable_definitions or ()}
    batches = "indicators" in variables
    if not {"units", "periods"} <= variables or batches == ("indicator" in variables):
        raise SourceConfigError("query must declare $units, $periods and one of $indicator or $indicators")
    mapping = parse_mapping(table.get("mapping", {}))
    if batches and mapping.indicator is None:
        raise SourceConfigError("with $indicators, [source.mapping] needs indicator")
    return GraphQLTarget(url, query, mapping, batches, parse_headers(table.get("headers", {})))


class GraphQLConnector:
    idempotent = True  # query operations only (checked when the configuration is read)

    def __init__(self, config: SourceConfig) -> None:
        assert isinstance(config.target, GraphQLTarget)
        self.target = config.target
        self.policy = config.policy
        self.names = {remote: code for code, remote in config.indicators}
        self.remote = dict(config.indicators)
        self.batches_indicators = self.target.batches_indicators
        self.client = new_client(config.policy.timeout, config.policy.max_concurrency)

    async def ask(self, question: Question) -> list[SourceValue]:
        names = [self.remote[code] for code in question.indicators]
        variables: dict[str, Any] = {"units": list(question.units), "periods": list(question.periods)}
        if self.batches_indicators:
            variables["indicators"] = names
        else:
            variables["indicator"] = names[0]
        request = self.client.build_request(
            "POST",
            self.target.url,
            json={"query": self.target.query, "variables": variables},
            headers={"Accept": _ACCEPT, **dict(self.target.headers)},
        )
        payload = await exchange(self.client, request, self.policy.max_bytes)
        if not isinstance(payload, dict):
            raise SourceMalformed("the GraphQL answer is not an object")
        if payload.get("errors"):
            raise SourceUpstreamError(f"the GraphQL answer has errors: {str(payload['errors'])[:300]}")
        rows = rows_at(payload.get("data"), self.target.mapping.rows)
        return read_rows(rows, self.target.mapping, question, names=self.names, default_status=self.policy.status)

    async def close(self) -> None:
        await self.client.aclose()
