"""Compiled plans: queries answered without walking graphql-core's executor field by field.

graphql-core completes every field through the same general machinery (resolve info, argument
coercion, awaitable checks, error handling), which is most of a small query's CPU: on the point
lookup ``{ observation(...) { value status period } }`` the hub served 2.8x fewer requests per
second than a bare Starlette endpoint with graphql-core, and about as many when that machinery was
bypassed (bench/README.md).

A document qualifies when it is a query without directives over object types only (no interface
or union is selected). Its plan is compiled once, on its first run, and each later run:

- calls each resolver exactly as graphql-core would: the same resolve function, resolve info
  (path included), and coerced arguments (literals coerced once, variables per run);
- reads strawberry's plain fields (no resolver of their own) straight off their parent;
- completes leaves with the types' own ``coerce_output_value``;
- awaits resolvers breadth first: every awaitable of one depth is gathered together, so the
  dataloaders behind them batch across the whole depth, as they do under graphql-core.

Anything off the happy path (a resolver raising, a null in a non-null position, a value a scalar
refuses) raises :class:`Fallback`, and the caller runs the document through graphql-core, which
writes the errors exactly as it always has. Queries change nothing, so running one again is safe;
a run that meets an error costs its resolvers twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from graphql import (
    DirectiveNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    Node,
    OperationType,
    Undefined,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from graphql import Executor as OperationExecutor
from graphql.execution.collect_fields import FieldDetailsList, collect_fields, collect_subfields
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, is_awaitable, is_iterable
from strawberry.schema.schema_converter import GraphQLCoreConverter

TYPENAME = "__typename"
# Argument values a resolver cannot change, so a run may share them with the next: a list or an
# object could be altered in place (strawberry's _entities pops from its representations).
_IMMUTABLE = (str, int, float, Decimal, date, Enum, type(None))


class Fallback(Exception):
    """The plan cannot answer this run; graphql-core must (it writes the errors)."""


class NotPlannable(Exception):
    """The document is outside what plans cover; it always runs through graphql-core."""


@dataclass(slots=True)
class _Run:
    """One run's state: the operation (coerced variables, context) and the awaitables of a depth."""

    operation: OperationExecutor
    # (container, key, awaitable, completer, path): the value goes to container[key] once awaited.
    pending: list[tuple[Any, Any, Any, Complete, Path]] = field(default_factory=list)


# Completes one value of a type: the value, its path in the response, the run.
Complete = Callable[[Any, Path, _Run], Any]


@dataclass(frozen=True, slots=True)
class Plan:
    complete_root: Complete

    async def run(self, operation: OperationExecutor) -> dict[str, Any]:
        """The response's data, or :class:`Fallback`. ``operation`` holds the variables and context."""
        run = _Run(operation)
        try:
            data = self.complete_root(operation.root_value, None, run)  # type: ignore[arg-type]
            while run.pending:
                depth, run.pending = run.pending, []
                values = await _settle([p[2] for p in depth])
                for (container, key, _, complete, path), value in zip(depth, values, strict=True):
                    container[key] = complete(value, path, run)
        except Fallback:
            _close([p[2] for p in run.pending])
            raise
        except Exception as exc:  # a plain field's attribute missing, say: graphql-core reports it
            _close([p[2] for p in run.pending])
            raise Fallback from exc
        return data


def compile_plan(operation: OperationExecutor) -> Plan | None:
    """The plan for ``operation``'s document, or None when it has none (graphql-core runs it)."""
    definition = operation.operation
    if definition.operation is not OperationType.QUERY:
        return None
    if _contains([definition, *(f.definition for f in operation.fragments.values())], DirectiveNode):
        return None
    root_type = operation.schema.query_type
    assert root_type is not None
    try:
        fields = collect_fields(operation.schema, operation.fragments, operation.variable_values, root_type, definition)
        return Plan(_object_completer(operation, root_type, fields.grouped_field_set, root=True))
    except Exception:  # NotPlannable, or a literal argument that does not coerce: graphql-core says why
        return None


def _completer(operation: OperationExecutor, type_: GraphQLOutputType, details: FieldDetailsList) -> Complete:
    """How a value of ``type_`` is completed."""
    if isinstance(type_, GraphQLNonNull):
        inner = _completer(operation, type_.of_type, details)

        def complete_non_null(value: Any, path: Path, run: _Run) -> Any:
            completed = inner(value, path, run)
            if completed is None:
                raise Fallback
            return completed

        return complete_non_null
    if isinstance(type_, GraphQLList):
        item = _completer(operation, type_.of_type, details)
        leaves = is_leaf_type(get_named_type(type_))

        def complete_list(value: Any, path: Path, run: _Run) -> Any:
            if value is None:
                return None
            if not is_iterable(value):
                raise Fallback
            if leaves:  # no resolver below: no paths to build
                return [item(v, path, run) for v in value]
            return [item(v, path.add_key(i), run) for i, v in enumerate(value)]

        return complete_list
    if is_leaf_type(type_):
        coerce = type_.coerce_output_value  # type: ignore[union-attr]

        def complete_leaf(value: Any, path: Path, run: _Run) -> Any:
            if value is None:
                return None
            if is_awaitable(value):
                _close([value])
                raise Fallback
            coerced = coerce(value)
            if coerced is None or coerced is Undefined:
                raise Fallback
            return coerced

        return complete_leaf
    if isinstance(type_, GraphQLObjectType):
        collected = collect_subfields(
            operation.schema, operation.fragments, operation.variable_values, operation.operation, type_, details
        )
        return _object_completer(operation, type_, collected.grouped_field_set, root=False)
    raise NotPlannable  # an interface or a union: the runtime type is decided per value


def _object_completer(
    operation: OperationExecutor, type_: GraphQLObjectType, grouped: dict[str, FieldDetailsList], *, root: bool
) -> Complete:
    definition = (type_.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None or definition.is_type_of is not None:
        raise NotPlannable  # not a strawberry type, or its own is_type_of, which may want the resolve info
    is_type_of = None if root else type_.is_type_of  # strawberry's isinstance check for types with interfaces
    steps = [_field_step(operation, type_, key, details) for key, details in grouped.items()]

    def complete_object(value: Any, path: Path, run: _Run) -> Any:
        if value is None and not root:  # the root value is None: the hub's resolvers need none
            return None
        if is_type_of is not None and not is_type_of(value, None):
            raise Fallback
        out: dict[str, Any] = {}
        for step in steps:
            step(value, path, run, out)
        return out

    return complete_object


def _field_step(
    operation: OperationExecutor, parent: GraphQLObjectType, key: str, details: FieldDetailsList
) -> Callable[[Any, Path, _Run, dict[str, Any]], None]:
    """How one response key of an object is filled in."""
    node = details[0].node
    name = node.name.value
    type_name = parent.name
    if name == TYPENAME:

        def typename(source: Any, path: Path, run: _Run, out: dict[str, Any]) -> None:
            out[key] = type_name

        return typename
    field = parent.fields.get(name)
    if field is None:
        raise NotPlannable  # __schema and __type: introspection stays with graphql-core
    complete = _completer(operation, field.type, details)
    if _is_basic(field):
        read = field.resolve
        if is_leaf_type(get_named_type(field.type)):

            def plain_leaf(source: Any, path: Path, run: _Run, out: dict[str, Any]) -> None:
                out[key] = complete(read(source, None), path, run)  # type: ignore[misc]

            return plain_leaf

        def plain(source: Any, path: Path, run: _Run, out: dict[str, Any]) -> None:
            out[key] = complete(read(source, None), Path(path, key, type_name), run)  # type: ignore[misc]

        return plain
    if field.resolve is None:
        raise NotPlannable  # graphql-core's default resolver (not a strawberry field)
    resolve, nodes = field.resolve, [d.node for d in details]
    fixed = None  # coerced per run, unless they are literals no resolver can change
    if not _contains(node.arguments, VariableNode):
        coerced = get_argument_values(field, node, operation.variable_values)
        if all(isinstance(v, _IMMUTABLE) for v in coerced.values()):
            fixed = coerced

    def resolved(source: Any, path: Path | None, run: _Run, out: dict[str, Any]) -> None:
        here = Path(path, key, type_name)
        info = run.operation.build_resolve_info(field, nodes, parent, here)
        arguments = fixed if fixed is not None else get_argument_values(field, node, run.operation.variable_values)
        value = resolve(source, info, **arguments)
        if is_awaitable(value):
            out[key] = None
            run.pending.append((out, key, value, complete, here))
        else:
            out[key] = complete(value, here, run)

    return resolved


def _is_basic(field: GraphQLField) -> bool:
    """A strawberry field with no resolver of its own: its value is an attribute of the parent."""
    return getattr(field.resolve, "_is_default", False)


def _contains(node: Any, kind: type[Node]) -> bool:
    """Whether ``node`` or anything below it in the syntax tree is a ``kind``."""
    if isinstance(node, kind):
        return True
    if isinstance(node, list | tuple):
        return any(_contains(n, kind) for n in node)
    if isinstance(node, Node):
        return any(_contains(getattr(node, k), kind) for k in node.keys if k != "loc")
    return False


async def _settle(awaitables: list[Any]) -> list[Any]:
    """Await one depth's resolvers together, as graphql-core does; a failure is a Fallback."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            raise Fallback from result
    return results


def _close(values: list[Any]) -> None:
    """Close coroutines that will never be awaited, so nothing warns about them."""
    for value in values:
        if asyncio.iscoroutine(value):
            value.close()
