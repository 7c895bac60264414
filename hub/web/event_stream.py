"""A subscription's responses: each event executed by an executor of its own, and shared.

Not graphql-core's ``subscribe()``: it executes every event on a copy of one executor, and the
copies share that executor's memo of collected sub-fields, which gains an entry per event (keyed by
a list built anew each time): about 2 KiB per delivered event, kept until the subscription ended.
Here each event gets an executor of its own, dropped once the event is delivered.

Subscribers of one event (schema.subscriptions hands them all the same payload object) that run the
same operation with the same variables and the same grants get the same response, executed once: a
thousand command-centre screens with one query cost one execution per event, not a thousand.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    create_source_event_stream,
    execute_subscription_event,
)
from graphql import Executor as OperationExecutor

from nrhub.resolvers.events import shared
from nrhub.schema.build import schema
from nrhub.schema.context import Context
from nrhub.schema.engine_internals import break_executor_cycle


class SharedResponses:
    """Responses by event payload, then by operation and grants; forgotten with the payload.

    Payloads are strawberry types, which compare by value and cannot be hashed: they are known by
    identity, and a finalizer forgets their responses when they are collected (before the id can be
    reused).
    """

    def __init__(self) -> None:
        self._by_payload: dict[int, dict[Hashable, Any]] = {}

    def __len__(self) -> int:
        """How many events' payloads are remembered (those still referenced somewhere)."""
        return len(self._by_payload)

    def get(
        self, payload: Any, key: Hashable, execute: Callable[[], Awaitable[ExecutionResult]]
    ) -> Awaitable[ExecutionResult]:
        ident = id(payload)
        memo = self._by_payload.get(ident)
        if memo is None:
            try:
                weakref.finalize(payload, self._by_payload.pop, ident, None)
            except TypeError:  # a payload that cannot be referenced weakly is executed for its subscriber alone
                return execute()
            memo = self._by_payload[ident] = {}
        started = key not in memo
        response = shared(memo, key, execute)
        if started:
            memo[key].add_done_callback(lambda done: self._forget_failed(ident, key, done))
        return response

    def _forget_failed(self, ident: int, key: Hashable, done: Any) -> None:
        # A failed execution's errors carry tracebacks whose frames hold the payload: kept here, the
        # payload would never be collected and its finalizer never run. Those waiting already have it.
        if done.cancelled() or done.exception() is not None or done.result().errors:
            memo = self._by_payload.get(ident)
            if memo is not None:
                memo.pop(key, None)
                if not memo:
                    del self._by_payload[ident]


def sharing_key(query: str, operation_name: str | None, variables: dict[str, Any] | None, context: Context) -> Hashable:
    """What a response may depend on besides the event: the operation and everything about the caller
    that resolvers consult (grants, scopes, agency, the units they may read, the day of the session)."""
    principal = context.principal
    return (
        query,
        operation_name,
        orjson.dumps(variables, option=orjson.OPT_SORT_KEYS) if variables else None,
        principal.grants,
        principal.scopes,
        principal.agency_code,
        principal.user,
        context.today,
        context.scope.unit_ids,  # a tuple, or None for every unit
    )


async def subscribe(
    document: DocumentNode,
    context: Context,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    *,
    responses: SharedResponses,
    key: Hashable,
) -> ExecutionResult | AsyncIterator[ExecutionResult]:
    """A subscription's response stream, or the errors that prevented it."""

    def executor(root_value: Any = None) -> OperationExecutor | list[GraphQLError]:
        return OperationExecutor.build(schema._schema, document, root_value, context, variables, operation_name)

    built = executor()
    if isinstance(built, list):
        return ExecutionResult(None, errors=built)
    try:
        source = create_source_event_stream(built)
        if inspect.isawaitable(source):
            source = await source
    finally:
        # The subscription lasts as long as its connection: left in its cycle, this executor (and the
        # context it holds) would outlive the connection until a full pass of the cyclic collector.
        break_executor_cycle(built)
    if isinstance(source, ExecutionResult):
        return source

    async def execute(payload: Any) -> ExecutionResult:
        per_event = executor(payload)
        if isinstance(per_event, list):  # cannot happen: the same arguments built the first executor
            return ExecutionResult(None, errors=per_event)
        try:
            result = execute_subscription_event(per_event)
            return await result if inspect.isawaitable(result) else result
        finally:
            break_executor_cycle(per_event)

    return _responses(source, lambda payload: responses.get(payload, key, lambda: execute(payload)))


async def _responses(
    source: Any, respond: Callable[[Any], Awaitable[ExecutionResult]]
) -> AsyncIterator[ExecutionResult]:
    try:
        async for payload in source:
            yield await respond(payload)
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
