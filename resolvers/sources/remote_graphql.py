"""The ``graphql`` kind: a remote GraphQL endpoint, one configured query, read through a field mapping.

The query receives ``$units`` and ``$periods`` (lists of strings) and ``$indicator`` (one call per
indicator) or ``$indicators`` (one call in all). Only query operations are accepted in the
configuration, so a call is safe to repeat. An answer with ``errors`` is refused whole: the hub
cannot tell which of its values the errors touch.
"""

from __future__ import annotations

from typing import Any

from resolvers.sources.config import GraphQLTarget, SourceConfig
from resolvers.sources.failures import SourceMalformed, SourceUpstreamError
from resolvers.sources.transport import exchange, new_client
from resolvers.sources.values import Question, SourceValue, read_rows, rows_at

_ACCEPT = "application/graphql-response+json, application/json;q=0.9"


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
