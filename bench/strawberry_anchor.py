"""The stack's own floor for the point lookup: the least a GraphQL request costs with strawberry.

One strawberry field, ``observation(indicator, unit, period) { value status period }``, answered
with the Starlette anchor's SQL (bench/queries.py ``_POINT``) and served beside it by
bench/anchor_app.py at ``POST /graphql``. Everything the hub adds is left out: no authentication,
grants, limits, error masking, content negotiation or unit validity, and no provenance. What is left
is the required stack, run the cheapest way this repository knows (the hub's own): the parsed and
validated document cached by its text, ``Executor.build`` plus ``execute_root_selection_set``
(no incremental-delivery wrapper), orjson, and ``gc.freeze()`` once started.

So ``hub / strawberry`` is what the hub's own layers cost, and ``strawberry / starlette`` is what
executing one GraphQL field with strawberry and graphql-core costs on this machine, whatever the
application around it does.
"""

from __future__ import annotations

from decimal import Decimal

import orjson
import strawberry
from graphql import DocumentNode, execute_root_selection_set, parse, validate
from graphql import Executor as OperationExecutor
from starlette.requests import Request
from starlette.responses import Response

from bench.queries import _POINT

Number = strawberry.scalar(
    Decimal,
    name="Decimal",
    serialize=lambda d: orjson.Fragment(str(d).encode()),  # stored digits, as the hub writes them
    parse_value=Decimal,
)


@strawberry.type
class Observation:
    value: Number  # type: ignore[valid-type]
    status: str
    period: str


@strawberry.type
class Query:
    @strawberry.field
    async def observation(self, info: strawberry.Info, indicator: str, unit: str, period: str) -> Observation | None:
        row = await info.context.fetchrow(_POINT, indicator, unit, period)
        return None if row is None else Observation(value=row["value"], status=row["status"], period=row["period"])


_schema = strawberry.Schema(Query)._schema
_documents: dict[str, DocumentNode] = {}


def _document(query: str) -> DocumentNode:
    document = _documents.get(query)
    if document is None:
        document = parse(query)
        errors = validate(_schema, document)
        if errors:
            raise ValueError(errors[0].message)
        _documents[query] = document
    return document


async def graphql_endpoint(request: Request) -> Response:
    """``POST /graphql`` with a JSON body; the context is the anchors' asyncpg pool."""
    body = orjson.loads(await request.body())
    operation = OperationExecutor.build(_schema, _document(body["query"]), None, request.app.state.pool)
    assert not isinstance(operation, list)  # no variables to coerce
    result = execute_root_selection_set(operation)
    if not hasattr(result, "data"):
        result = await result
    payload: dict[str, object] = {"data": result.data}
    if result.errors:
        payload["errors"] = [e.formatted for e in result.errors]
    return Response(orjson.dumps(payload), media_type="application/json")
