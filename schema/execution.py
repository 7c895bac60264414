"""Parse, validate and execute GraphQL documents, with caches, limits and error masking.

Parsing and validation results are cached per document text (and introspection permission), so
a dashboard's repeated query costs only execution. Errors leave here in one shape: a message for
the caller and ``extensions.code`` from the fixed set; anything unexpected is masked and logged
with a correlation id that is also returned.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationType,
    ValidationRule,
    execute_root_selection_set,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from graphql import Executor as OperationExecutor

from nrhub.auth.graphiql_client import GRAPHIQL_CLIENT_ID
from nrhub.auth.outage import MESSAGE as OUTAGE_MESSAGE
from nrhub.auth.outage import OUTAGE, database_down
from nrhub.auth.principal import Principal
from nrhub.resolvers.errors import ERROR_CODES, HubError
from nrhub.schema.build import schema
from nrhub.schema.context import Context
from nrhub.schema.engine_internals import OneOfInputValidationRule, break_executor_cycle
from nrhub.schema.limits import Limits, make_limit_rules, string_problem
from nrhub.schema.plan import Fallback, Operation, Plans
from nrhub.schema.time_limit import Deadlines

log = logging.getLogger("hub.graphql")
_SUGGESTION = re.compile(r"\s*Did you mean .*\?$")
_CACHE_SIZE = 512


@dataclass(frozen=True, slots=True)
class Prepared:
    """A document ready to run, or the errors that stop it before any resolver runs."""

    document: DocumentNode | None
    errors: list[GraphQLError]
    operation: OperationType | None
    key: tuple[str, str | None] | None = None  # the query text and operation name: the plan's cache key


class _NoSchema(ValidationRule):
    """Refuses the schema itself: introspection's meta-fields, and the federation subgraph's
    ``_service { sdl }``, which is the same schema as SDL (graphql-core's own introspection rule
    knows nothing of it)."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        name = node.name.value
        if name in ("__schema", "__type") or (
            name == "_service" and self.context.get_parent_type() is self.context.schema.query_type
        ):
            message = f"introspection ({name}) is not available to you; the schema is published as schema.graphql"
            self.report_error(GraphQLError(message, node, extensions={"code": "FORBIDDEN"}))


class Executor:
    def __init__(
        self,
        limits: Limits,
        *,
        max_tokens: int,
        timeout: float,
        suggestions: bool,
        plans: bool = True,
        introspection: bool = False,
        graphiql: bool = False,
    ) -> None:
        self._schema = schema._schema
        base = (*specified_rules, OneOfInputValidationRule, *make_limit_rules(limits))
        self._rules = {True: base, False: (*base, _NoSchema)}
        self._introspection = introspection
        self._graphiql = graphiql
        self._max_tokens = max_tokens
        self._max_string = limits.max_string_length
        self._deadlines = Deadlines(timeout)
        self._hide_suggestions = not suggestions
        self._parsed: OrderedDict[str, DocumentNode | GraphQLError] = OrderedDict()
        self._validated: OrderedDict[tuple[str, bool], list[GraphQLError]] = OrderedDict()
        self._plans: OrderedDict[tuple[str, str | None], Plans] | None = OrderedDict() if plans else None

    def may_see_schema(self, principal: Principal) -> bool:
        """Whether ``principal`` gets introspection and ``_service`` (``prepare``'s ``introspection``).

        With HUB_INTROSPECTION on, callers who may read the catalogue (catalog:read; callers without a
        token hold it where public reading is on). And, while the hub serves GraphiQL, people signed in
        to it, whatever their scopes: GraphiQL builds its docs by introspection, and what they would
        learn is the schema the hub publishes as schema.graphql, nothing of the data.
        """
        if self._introspection and principal.has_scope("catalog:read"):
            return True
        return self._graphiql and principal.user is not None and principal.client_id == GRAPHIQL_CLIENT_ID

    def prepare(self, query: str, operation_name: str | None, *, introspection: bool) -> Prepared:
        document = self._parse(query)
        if isinstance(document, GraphQLError):
            return Prepared(None, [document], None)
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            message = (
                f"no operation named {operation_name!r}"
                if operation_name
                else "the document has several operations; name one with operationName"
            )
            return Prepared(document, [GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})], None)
        key = (query, introspection)
        errors = self._validated.get(key)
        if errors is None:
            errors = validate(
                self._schema, document, self._rules[introspection], hide_suggestions=self._hide_suggestions
            )
            _remember(self._validated, key, errors)
        return Prepared(document, errors, operation.operation, (query, operation_name))

    def check_variables(self, variables: Any) -> GraphQLError | None:
        """Strings inside variables obey the same rules as literals (no NUL, valid Unicode, length)."""
        for text in _strings(variables):
            problem = string_problem(text, self._max_string)
            if problem:
                return GraphQLError(problem, extensions={"code": "BAD_USER_INPUT"})
        return None

    async def run(
        self,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
    ) -> ExecutionResult:
        assert prepared.document is not None
        operation: Operation | list[GraphQLError] = []
        try:
            async with self._deadlines.limit():
                plans = self._plans_of(prepared)
                if plans is not None and plans.switches is not None:
                    operation = plans.view(variables, context, hide_suggestions=self._hide_suggestions)
                else:
                    operation = self._build(prepared, variables, operation_name, context)
                if isinstance(operation, list):  # variables that do not coerce
                    return ExecutionResult(data=None, errors=operation)
                if plans is None and isinstance(operation, OperationExecutor):
                    plans = self._plans_of(prepared, first=operation)
                plan = plans.for_run(operation) if plans is not None else None
                result = None
                if plan is not None:
                    try:
                        result = await plan.run(operation)
                    except Fallback:
                        context.side_errors.clear()  # graphql-core runs the resolvers again and reports anew
                if result is None:
                    if not isinstance(operation, OperationExecutor):  # graphql-core needs an executor of its own
                        operation = self._build(prepared, variables, operation_name, context)
                        if isinstance(operation, list):
                            return ExecutionResult(data=None, errors=operation)
                    result = execute_root_selection_set(operation)
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    result = await result
        except TimeoutError:
            error = GraphQLError(
                f"the query ran longer than the {self._deadlines.seconds:g} s limit",
                extensions={"code": "QUERY_TOO_COMPLEX"},
            )
            return ExecutionResult(data=None, errors=[error])
        finally:
            if isinstance(operation, OperationExecutor):
                # Its self-reference would keep every request's context and loaders for the cyclic collector.
                break_executor_cycle(operation)
        assert isinstance(result, ExecutionResult)
        for path, hub_error in context.side_errors:
            side = GraphQLError(hub_error.message, path=path, original_error=hub_error)
            result.errors = [*(result.errors or []), side]
        return result

    def _build(
        self, prepared: Prepared, variables: dict[str, Any] | None, operation_name: str | None, context: Context
    ) -> OperationExecutor | list[GraphQLError]:
        # Not execute(): it wraps every operation for incremental delivery (@defer, @stream), which
        # the schema does not offer, at a sixth of a small query's execution time.
        assert prepared.document is not None
        return OperationExecutor.build(
            self._schema,
            prepared.document,
            None,
            context,
            variables,
            operation_name,
            hide_suggestions=self._hide_suggestions,
        )

    def _plans_of(self, prepared: Prepared, first: OperationExecutor | None = None) -> Plans | None:
        """The document's compiled plans (schema/plan.py), made from its ``first`` run's executor when
        it has none yet; None without plans."""
        if self._plans is None or prepared.key is None:
            return None
        plans = self._plans.get(prepared.key)
        if plans is None and first is not None:
            plans = Plans(first)
            _remember(self._plans, prepared.key, plans)
        return plans

    def _parse(self, query: str) -> DocumentNode | GraphQLError:
        cached = self._parsed.get(query)
        if cached is None:
            try:
                cached = parse(query, max_tokens=self._max_tokens, no_location=False)
            except GraphQLError as exc:
                if "token limit" in exc.message.lower() or "tokens" in exc.message.lower():
                    exc.extensions = {"code": "QUERY_TOO_COMPLEX"}
                cached = exc
            _remember(self._parsed, query, cached)
        return cached


def format_error(error: GraphQLError, request_id: str, *, suggestions: bool) -> dict[str, Any]:
    """One error as the caller sees it; unexpected errors are masked and logged."""
    original = error.original_error
    while isinstance(original, GraphQLError):
        # A scalar's BadUserInput inside a variable's value reaches here wrapped, once per layer.
        original = original.original_error
    if isinstance(original, HubError):
        code, message = original.code, original.message
    elif database_down(original):  # logged once per incident, not as a traceback per field
        assert original is not None
        OUTAGE.noticed(original)
        code, message = "SOURCE_UNAVAILABLE", OUTAGE_MESSAGE
    elif original is not None:
        log.error("unexpected error, correlation id %s, path %s", request_id, error.path, exc_info=original)
        code, message = "INTERNAL", f"internal error; correlation id {request_id}"
    else:
        code = (error.extensions or {}).get("code", "BAD_USER_INPUT")
        message = error.message if suggestions else _SUGGESTION.sub("", error.message)
    if code not in ERROR_CODES:
        code = "INTERNAL"
    formatted: dict[str, Any] = {"message": message}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = error.path
    formatted["extensions"] = {"code": code, **({"correlationId": request_id} if code == "INTERNAL" else {})}
    return formatted


def _remember(cache: OrderedDict, key: Any, value: Any) -> None:
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
