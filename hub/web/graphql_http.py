"""GraphQL over HTTP (GraphQL Foundation spec): POST and GET, media types, status codes, limits.

- POST ``application/json``; GET for queries only (a mutation by GET is 405).
- ``application/graphql-response+json`` by default, ``application/json`` when the Accept header
  prefers it, 406 for anything else; browsers asking for HTML get GraphiQL.
- The body is refused with 413 before it is parsed when it exceeds HUB_MAX_BODY_BYTES
  (auth.body_limit, for every route), answered here as a GraphQL error.
- Subscriptions are served over WebSocket only; one sent by HTTP is a request error.
- The request id is the app's (nrhub.web.request_id); the Context comes from the one factory
  (schema.context.ContextFactory).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from graphql import GraphQLError, OperationType
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from nrhub.auth.body_limit import BodyTooLarge
from nrhub.auth.http_status import status_for
from nrhub.auth.principal import Principal
from nrhub.auth.resource import Unauthorized
from nrhub.schema.context import ContextFactory
from nrhub.schema.execution import Executor, Prepared, format_error
from nrhub.web.request_id import request_id_of

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

Authenticate = Callable[[Request], Awaitable[Principal]]


class GraphQLEndpoint:
    """The ``/graphql`` route, an ASGI app. Collaborators come in through ``__init__``; nothing global."""

    def __init__(
        self,
        executor: Executor,
        authenticate: Authenticate,
        *,
        suggestions: bool,
        graphiql: Callable[[Request], Response] | None,
    ) -> None:
        self.executor = executor
        self.authenticate = authenticate
        self.suggestions = suggestions
        self.graphiql = graphiql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Routed as an ASGI app rather than a request/response function, which Starlette wraps per
        # request in three more coroutines and a wrapper around each send (no exception handlers
        # are registered for it to find).
        try:
            response = await self.handle(Request(scope, receive))
        except ClientDisconnect:
            return  # the caller left before its body was in: no one to answer, nothing to log
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        if request.method == "GET" and self.graphiql and _wants_html(request):
            return self.graphiql(request)
        headers = read_headers(request, _READ_HEADERS)
        media_type = _negotiate(headers.get(b"accept", ""))
        if media_type is None:
            return Response(
                "Not Acceptable: ask for application/graphql-response+json or application/json",
                406,
                media_type="text/plain",
            )
        request_id = request_id_of(request.scope)
        if request.method == "POST":
            try:
                params = await self._post_params(request, headers)
            except BodyTooLarge as exc:
                error = _bad_request(exc.description)
                return self._respond(None, [error], media_type, request_id, request_error=True, status=status_for(exc))
        else:
            params = _get_params(request)
        if isinstance(params, Response):
            return params
        if isinstance(params, GraphQLError):
            # A body that is not a GraphQL request at all is a 400 whatever the media type.
            return self._respond(None, [params], media_type, request_id, request_error=True, status=400)
        query, variables, operation_name = params
        # Who is calling is settled first: a bad token is a 401 whatever the document says.
        try:
            principal = await self.authenticate(request)
        except Unauthorized as exc:
            body = {"errors": [{"message": exc.description, "extensions": {"code": exc.code}}]}
            return Response(
                orjson.dumps(body),
                status_for(exc),
                media_type=f"{media_type}; charset=utf-8",
                headers={"WWW-Authenticate": exc.challenge},
            )
        prepared = self.executor.prepare(query, operation_name, introspection=self.executor.may_see_schema(principal))
        if request.method == "GET" and prepared.operation not in (None, OperationType.QUERY):
            return Response(
                "GET runs queries only; send mutations with POST",
                405,
                headers={"Allow": "POST"},
                media_type="text/plain",
            )
        if prepared.errors:
            return self._respond(None, prepared.errors, media_type, request_id, request_error=True)
        if prepared.operation is OperationType.SUBSCRIPTION:
            # graphql-core would run its resolver as a query's and fail on the stream it returns.
            return self._respond(None, [_OVER_WEBSOCKET], media_type, request_id, request_error=True)
        problem = self.executor.check_variables(variables)
        if problem:
            return self._respond(None, [problem], media_type, request_id, request_error=True)
        return await self._execute(request, principal, prepared, variables, operation_name, media_type, request_id)

    async def _execute(
        self,
        request: Request,
        principal: Principal,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        media_type: str,
        request_id: str,
    ) -> Response:
        contexts: ContextFactory = request.state.hub.contexts
        context = await contexts.open(principal, request_id)
        result = await self.executor.run(prepared, variables, operation_name, context)
        # Errors without a path come from before execution (e.g. variables that do not coerce):
        # a request error. A null data after execution is still a 200 (GraphQL over HTTP).
        request_error = result.data is None and all(not e.path for e in result.errors or [])
        return self._respond(result.data, result.errors or [], media_type, request_id, request_error=request_error)

    def _respond(
        self,
        data: Any,
        errors: list[GraphQLError],
        media_type: str,
        request_id: str,
        *,
        request_error: bool,
        status: int | None = None,
    ) -> Response:
        body: dict[str, Any] = {}
        if errors:
            body["errors"] = [format_error(e, request_id, suggestions=self.suggestions) for e in errors]
        if not request_error or data is not None:
            body["data"] = data
        # graphql-response+json says what failed through the status; plain JSON keeps 200.
        if status is None:
            status = 400 if request_error and media_type == GRAPHQL_RESPONSE else 200
        return _Answer(orjson.dumps(body), status, media_type)

    async def _post_params(
        self, request: Request, headers: dict[bytes, str]
    ) -> tuple[str, Any, Any] | GraphQLError | Response:
        content_type = headers.get(b"content-type", "").split(";")[0].strip().lower()
        if content_type != JSON:
            return Response("POST bodies must be application/json", 415, media_type="text/plain")
        body = bytearray()
        # The ASGI messages themselves (Request.stream() adds an async generator per request); the
        # app's body limit raises BodyTooLarge from receive() once the body passes it.
        while True:
            message = await request.receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()  # the caller went away mid-body: nothing to answer
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _bad_request("the body is not valid JSON (UTF-8, no lone surrogates)")
        if not isinstance(payload, dict):
            return _bad_request("the body must be a JSON object with a query")
        return _params(payload.get("query"), payload.get("variables"), payload.get("operationName"))


class _Answer(Response):
    """A GraphQL response, its headers written directly (not through Response's general header
    handling, which a point lookup's few microseconds notice); nrhub.web.request_id adds X-Request-Id."""

    def __init__(self, body: bytes, status: int, media_type: str) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", _CONTENT_TYPES[media_type]),
        ]


_CONTENT_TYPES = {kind: f"{kind}; charset=utf-8".encode() for kind in (GRAPHQL_RESPONSE, JSON)}


_READ_HEADERS = frozenset((b"accept", b"content-type"))


def read_headers(request: Request, names: frozenset[bytes]) -> dict[bytes, str]:
    """The request's headers of these (lower-case) names, in one pass over them (the first of a
    repeated one, as Starlette's Headers.get gives); each Headers.get is a pass of its own."""
    found: dict[bytes, str] = {}
    for name, value in request.scope["headers"]:
        if name in names and name not in found:
            found[name] = value.decode("latin-1")
    return found


def _get_params(request: Request) -> tuple[str, Any, Any] | GraphQLError:
    raw_variables = request.query_params.get("variables")
    variables: Any = None
    if raw_variables:
        try:
            variables = orjson.loads(raw_variables)
        except orjson.JSONDecodeError:
            return _bad_request("variables is not valid JSON")
    return _params(request.query_params.get("query"), variables, request.query_params.get("operationName"))


def _params(query: Any, variables: Any, operation_name: Any) -> tuple[str, Any, Any] | GraphQLError:
    if not isinstance(query, str) or not query.strip():
        return _bad_request("the request has no query string")
    if variables is not None and not isinstance(variables, dict):
        return _bad_request("variables must be a JSON object")
    if operation_name is not None and not isinstance(operation_name, str):
        return _bad_request("operationName must be a string")
    return query, variables, operation_name


def _bad_request(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


_OVER_WEBSOCKET = _bad_request("subscriptions are served over WebSocket (graphql-transport-ws) at /graphql")


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct Accept headers
def _negotiate(accept: str) -> str | None:
    """The response media type for an Accept header, in the client's order of preference."""
    if not accept.strip():
        return GRAPHQL_RESPONSE
    choices = []
    for position, item in enumerate(accept.split(",")):
        kind, *params = (p.strip() for p in item.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        choices.append((-quality, position, kind.lower()))
    for negative_quality, _, kind in sorted(choices):
        if negative_quality == 0:
            continue
        if kind in (GRAPHQL_RESPONSE, "application/*", "*/*"):
            return GRAPHQL_RESPONSE
        if kind == JSON:
            return JSON
    return None


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "query" not in request.query_params
