"""Compiled plans: queries answered without walking graphql-core's executor field by field.

graphql-core completes every field through the same general machinery (resolve info, argument
coercion, awaitable checks, error handling, a task per awaitable). Measured against it in the same
run (bench/README.md, fifth run), plans cost 0.57x the CPU per request of a catalogue query with
resolvers three levels deep, and 0.85-0.89x that of a point lookup.

A query qualifies when its only directives are ``@skip`` and ``@include``. Its plan is compiled on
its first run, one plan per value of the variables those directives read (the selection differs),
and each later run builds no graphql-core executor (:class:`RunView`) and:

- calls each resolver with what graphql-core would give it: the same resolve info (path included)
  and coerced arguments (literals coerced once, variables per run); a strawberry resolver with
  nothing wrapped around it (no permission classes, extensions or exception handlers) is called
  directly, its arguments converted to Python values as strawberry converts them (literals once);
- reads strawberry's plain fields (no resolver of their own) straight off their parent;
- completes leaves with the types' own ``coerce_output_value``, and an interface's or a union's
  values by the runtime type its ``resolve_type`` names, with the selection compiled for that type;
- awaits resolvers breadth first: every awaitable of one depth is gathered together, so the
  dataloaders behind them batch across the whole depth, as they do under graphql-core.

A root field that may be null and whose resolver raises (NOT_FOUND, FORBIDDEN, a source down) is
null with its error located at its path, as graphql-core would answer. Anything else off the happy
path (a resolver below the root or of a non-null root field raising, a null in a non-null position, a
value a scalar refuses) raises :class:`Fallback`, and the caller runs the document through
graphql-core, which writes the errors and propagates the nulls exactly as it always has. Queries
change nothing, so running one again is safe; such a run costs its resolvers twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from typing import Any, NamedTuple

from graphql import (
    DirectiveNode,
    ExecutionResult,
    FieldNode,
    GraphQLAbstractType,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfoHelpers,
    GraphQLScalarType,
    Node,
    OperationType,
    Undefined,
    VariableNode,
    default_type_resolver,
    get_argument_values,
    get_named_type,
    get_variable_values,
    is_abstract_type,
    is_leaf_type,
    located_error,
)
from graphql import Executor as OperationExecutor
from graphql.pyutils import Path, gather_with_cancel, is_awaitable, is_iterable

from nrhub.schema.engine_internals import (
    ArgumentConverter,
    ExecutorView,
    FieldDetailsList,
    ResolverCall,
    StrawberryField,
    argument_converter,
    has_exception_handlers,
    has_own_is_type_of,
    is_default_resolver,
    make_info,
    plain_attribute,
    python_enum_of,
    resolver_call,
    root_fields,
    strawberry_definition,
    strawberry_schema_of,
    subfields,
)

TYPENAME = "__typename"
_SWITCHES = {"skip", "include"}  # the directives a plan follows: they only choose the selection
# Argument values a resolver cannot change, so a run may share them with the next: a list or an
# object could be altered in place (strawberry's _entities pops from its representations).
_IMMUTABLE = (str, int, float, Decimal, date, Enum, type(None))


class Fallback(Exception):
    """The plan cannot answer this run; graphql-core must (it writes the errors)."""


class NotPlannable(Exception):
    """The document is outside what plans cover; it always runs through graphql-core."""


class _Pending(NamedTuple):
    """A resolver's awaitable: once settled, its completed value goes to ``container[key]``."""

    container: dict[str, Any] | list[Any]
    key: str | int
    awaitable: Any
    complete: Complete
    path: Path
    nodes: list[FieldNode]
    answers_errors: bool  # a nullable root field's: its resolver's error is null plus the error


@dataclass(slots=True)
class _Run:
    """One run's state: the operation (coerced variables, context), the awaitables of a depth, errors."""

    operation: Operation
    pending: list[_Pending] = field(default_factory=list)
    errors: list[GraphQLError] = field(default_factory=list)

    def failed(
        self, error: Exception, answers: bool, out: dict[str, Any] | list[Any], key: str | int, nodes: list, path: Path
    ) -> None:
        """A resolver raised: a nullable root field is null with the error where graphql-core puts it
        (the root fields' errors are the expected ones: NOT_FOUND, FORBIDDEN, a source down); any
        other is graphql-core's to handle, error propagation included."""
        if not answers:
            raise Fallback from error
        out[key] = None  # type: ignore[index]
        self.errors.append(located_error(error, nodes, path.as_list()))


# Completes one value of a type: the value, its path in the response, the run.
Complete = Callable[[Any, Path, _Run], Any]


_BACKGROUND: set[asyncio.Future[Any]] = set()  # held until done: the loop keeps only weak references


def _settle_in_background(values: Any) -> None:
    """``info.async_helpers.track`` for a plan's run: awaitables a resolver hands over are run to the
    end and their errors retrieved; the run does not wait for them (no hub resolver tracks any)."""
    for value in values:
        if is_awaitable(value):
            future = asyncio.ensure_future(value)
            _BACKGROUND.add(future)
            future.add_done_callback(_forget)


def _forget(future: asyncio.Future[Any]) -> None:
    """A background future is done: let it go, and retrieve its error so that none is logged as lost."""
    _BACKGROUND.discard(future)
    if not future.cancelled():
        future.exception()


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    """``info.async_helpers.gather`` for a plan's run: a sequence of awaitables, as graphql-core's
    executor takes them (``gather_with_cancel`` itself takes them as separate arguments)."""
    return gather_with_cancel(*values)


_HELPERS = GraphQLResolveInfoHelpers(gather=_gather, track=_settle_in_background)


class RunView(ExecutorView):
    """What a plan's run reads of graphql-core's executor, made for each run without building one.

    ``Executor.build`` (3.1 us for a point lookup, measured) finds the operation and its fragments,
    and sets up what plans never use (error collection, incremental delivery). A document's plans
    keep the parts that do not change from its first run's executor; each run adds its coerced
    variables and its context. Resolve infos are built by graphql-core's own method.
    """

    __slots__ = ()
    async_helpers = _HELPERS

    def __init__(self, document: _DocumentParts, variable_values: Any, context_value: Any) -> None:
        self.schema, self.fragment_definitions, self.fragments, self.operation = document
        self.variable_values = variable_values
        self.context_value = context_value


class _DocumentParts(NamedTuple):
    """What every run of one document's operation shares (and nothing of any one run's)."""

    schema: Any
    fragment_definitions: Any
    fragments: Any
    operation: Any


# A run's operation: graphql-core's executor, or (after a document's first run) the view of it.
Operation = OperationExecutor | RunView


@dataclass(frozen=True, slots=True)
class Plan:
    complete_root: Complete

    async def run(self, operation: Operation) -> ExecutionResult:
        """The result, or :class:`Fallback`. ``operation`` holds the variables and context."""
        run = _Run(operation)
        try:
            data = self.complete_root(operation.root_value, None, run)  # type: ignore[arg-type]
            while run.pending:
                depth, run.pending = run.pending, []
                if len(depth) == 1:  # a point lookup's one resolver: awaited here, no list and no frame more
                    try:
                        values = [await depth[0].awaitable]
                    except Exception as exc:
                        values = [exc]
                else:
                    values = await _settle([p.awaitable for p in depth])
                for p, value in zip(depth, values, strict=True):
                    if isinstance(value, Exception):
                        run.failed(value, p.answers_errors, p.container, p.key, p.nodes, p.path)
                    else:
                        p.container[p.key] = p.complete(value, p.path, run)  # type: ignore[index]  # str in a dict, int in a list
        except Fallback:
            _close([p.awaitable for p in run.pending])
            raise
        except Exception as exc:  # a plain field's attribute missing, say: graphql-core reports it
            _close([p.awaitable for p in run.pending])
            raise Fallback from exc
        return ExecutionResult(data, run.errors or None)


class Plans:
    """A document's plans: one per value of the variables its ``@skip`` and ``@include`` read."""

    _MOST = 16  # variants kept per document; beyond them graphql-core runs the rest

    def __init__(self, first: OperationExecutor) -> None:
        self.switches = _switch_variables(first)  # None: never a plan
        self._variants: dict[tuple[Any, ...], Plan | None] = {}
        self._document = _DocumentParts(first.schema, first.fragment_definitions, first.fragments, first.operation)

    def view(self, variables: dict[str, Any] | None, context: Any, *, hide_suggestions: bool) -> RunView | list:
        """A later run's operation: its variables coerced as ``Executor.build`` coerces them (a list of
        errors when they do not coerce) and its context, beside the document's parts."""
        schema, _, _, definition = self._document
        coerced = get_variable_values(
            schema,
            definition.variable_definitions or (),
            variables or {},
            max_errors=50,  # as Executor.build
            hide_suggestions=hide_suggestions,
        )
        if isinstance(coerced, list):
            return coerced
        return RunView(self._document, coerced, context)

    def for_run(self, operation: Operation) -> Plan | None:
        if self.switches is None:
            return None
        coerced = operation.variable_values.coerced
        values = tuple(coerced.get(name) for name in self.switches)
        if values not in self._variants:
            if len(self._variants) >= self._MOST:
                return None
            self._variants[values] = compile_plan(operation)
        return self._variants[values]


def compile_plan(operation: Operation) -> Plan | None:
    """The plan for ``operation``'s document and its ``@skip``/``@include`` values, or None when it has
    none (graphql-core runs it). Use :class:`Plans`, which keeps one per value of those directives."""
    if _switch_variables(operation) is None:
        return None
    root_type = operation.schema.query_type
    assert root_type is not None
    try:
        return Plan(_object_completer(operation, root_type, root_fields(operation, root_type), root=True))
    except Exception:  # NotPlannable, or a literal argument that does not coerce: graphql-core says why
        return None


class _Owner(NamedTuple):
    """The field whose value is being completed: an abstract type's resolve_type is given its info."""

    field: GraphQLField
    parent: GraphQLObjectType


def _completer(operation: Operation, type_: GraphQLOutputType, details: FieldDetailsList, owner: _Owner) -> Complete:
    """How a value of ``type_`` is completed."""
    if isinstance(type_, GraphQLNonNull) and is_leaf_type(type_.of_type):
        return _leaf_completer(type_.of_type, required=True)  # type: ignore[arg-type]
    if isinstance(type_, GraphQLNonNull):
        inner = _completer(operation, type_.of_type, details, owner)

        def complete_non_null(value: Any, path: Path, run: _Run) -> Any:
            completed = inner(value, path, run)
            if completed is None:
                raise Fallback
            return completed

        return complete_non_null
    if isinstance(type_, GraphQLList):
        item = _completer(operation, type_.of_type, details, owner)
        leaves = is_leaf_type(get_named_type(type_))

        def complete_list(value: Any, path: Path, run: _Run) -> Any:
            if value is None:
                return None
            if not is_iterable(value):
                raise Fallback
            if leaves:  # no resolver below: no paths to build
                return [item(v, path, run) for v in value]
            out: list[Any] = []
            for i, v in enumerate(value):
                here = path.add_key(i)
                if is_awaitable(v):  # e.g. _entities: one coroutine per representation
                    out.append(None)
                    run.pending.append(_Pending(out, i, v, item, here, [], False))
                else:
                    out.append(item(v, here, run))
            return out

        return complete_list
    if is_leaf_type(type_):
        return _leaf_completer(type_, required=False)  # type: ignore[arg-type]
    if isinstance(type_, GraphQLObjectType):
        return _object_completer(operation, type_, subfields(operation, type_, details), root=False)
    assert is_abstract_type(type_)
    return _abstract_completer(operation, type_, details, owner)  # type: ignore[arg-type]


# Values that are never awaitable: their leaves skip graphql-core's awaitable test (an attribute lookup
# that fails for each of them).
_PLAIN_VALUES = frozenset((str, int, float, bool, Decimal, date, datetime))


def _leaf_completer(type_: GraphQLScalarType | GraphQLEnumType, *, required: bool) -> Complete:
    """A scalar's or an enum's values, coerced by the type; a null where the type is non-null, an
    awaitable, or a value the type refuses is graphql-core's to report (Fallback)."""
    coerce = _enum_names(type_) if isinstance(type_, GraphQLEnumType) else type_.coerce_output_value

    def complete_leaf(value: Any, path: Path, run: _Run) -> Any:
        if value is None:
            if required:
                raise Fallback
            return None
        if type(value) not in _PLAIN_VALUES and not isinstance(value, Enum) and is_awaitable(value):
            _close([value])
            raise Fallback
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise Fallback
        return coerced

    return complete_leaf


def _enum_names(type_: GraphQLEnumType) -> Callable[[Any], Any]:
    """An enum's name for a value. Strawberry's enum type finds a member's name by comparing it with
    every value in turn; the names of the Python enum's members are looked up once here, and any
    other value goes to the type's own coercion."""
    coerce = type_.coerce_output_value
    members = python_enum_of(type_)
    if members is None:
        return coerce
    names = {m: name for name, v in type_.values.items() for m in members if m.value == v.value}

    def name_of(value: Any) -> Any:
        try:
            return names[value]
        except (KeyError, TypeError):  # not one of the members, or unhashable
            return coerce(value)

    return name_of


def _abstract_completer(
    operation: Operation, type_: GraphQLAbstractType, details: FieldDetailsList, owner: _Owner
) -> Complete:
    """An interface or a union: each value's runtime type, found as graphql-core finds it, picks the
    completer compiled for that type's selection (its fragments included)."""
    schema = operation.schema
    by_type = {
        possible.name: _object_completer(
            operation,
            possible,
            subfields(operation, possible, details),
            root=False,
        )
        for possible in schema.get_possible_types(type_)
    }
    resolve_type = type_.resolve_type or default_type_resolver
    nodes = [d.node for d in details]

    def complete_abstract(value: Any, path: Path, run: _Run) -> Any:
        if value is None:
            return None
        info = run.operation.build_resolve_info(owner.field, nodes, owner.parent, path)
        name = resolve_type(value, info, type_)
        complete = by_type.get(name) if isinstance(name, str) else None
        if complete is None:  # no such type, an awaitable, an error object in a list: graphql-core's
            _close([name])
            raise Fallback
        return complete(value, path, run)

    return complete_abstract


def _object_completer(
    operation: Operation, type_: GraphQLObjectType, grouped: dict[str, FieldDetailsList], *, root: bool
) -> Complete:
    if strawberry_definition(type_) is None or has_own_is_type_of(type_):
        raise NotPlannable  # not a strawberry type, or its own is_type_of, which may want the resolve info
    is_type_of = None if root else type_.is_type_of  # strawberry's isinstance check for types with interfaces
    steps = [_field_step(operation, type_, key, details, root=root) for key, details in grouped.items()]

    def complete_object(value: Any, path: Path, run: _Run) -> Any:
        if value is None and not root:  # the root value is None: the hub's resolvers need none
            return None
        if is_type_of is not None and not is_type_of(value, None):  # type: ignore[arg-type]  # reads no info
            raise Fallback
        out: dict[str, Any] = {}
        for step in steps:
            step(value, path, run, out)
        return out

    return complete_object


def _field_step(
    operation: Operation, parent: GraphQLObjectType, key: str, details: FieldDetailsList, *, root: bool
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
    complete = _completer(operation, field.type, details, _Owner(field, parent))
    if is_default_resolver(field):
        read = _reader(field)
        if is_leaf_type(get_named_type(field.type)):

            def plain_leaf(source: Any, path: Path, run: _Run, out: dict[str, Any]) -> None:
                out[key] = complete(read(source), path, run)

            return plain_leaf

        def plain(source: Any, path: Path, run: _Run, out: dict[str, Any]) -> None:
            out[key] = complete(read(source), Path(path, key, type_name), run)

        return plain
    if field.resolve is None:
        raise NotPlannable  # graphql-core's default resolver (not a strawberry field)
    resolve, nodes = field.resolve, [d.node for d in details]
    fixed = None  # coerced per run, unless they are literals no resolver can change
    if not _all(_variables, node.arguments):
        coerced = get_argument_values(field, node, operation.variable_values)
        if all(isinstance(v, _IMMUTABLE) for v in coerced.values()):
            fixed = coerced
    direct = _DirectCall.of(operation, field, fixed)
    if direct is not None:
        resolve = direct  # type: ignore[assignment]
        if direct.converted is not None:
            fixed = {}  # the direct call holds the literals, already converted: it is given none

    answers_errors = root and not isinstance(field.type, GraphQLNonNull)

    def resolved(source: Any, path: Path | None, run: _Run, out: dict[str, Any]) -> None:
        here = Path(path, key, type_name)
        try:
            info = run.operation.build_resolve_info(field, nodes, parent, here)
            arguments = fixed if fixed is not None else get_argument_values(field, node, run.operation.variable_values)
            value = resolve(source, info, **arguments)
        except Exception as exc:
            run.failed(exc, answers_errors, out, key, nodes, here)
            return
        if is_awaitable(value):
            out[key] = None
            run.pending.append(_Pending(out, key, value, complete, here, nodes, answers_errors))
        else:
            out[key] = complete(value, here, run)

    return resolved


class _DirectCall:
    """A strawberry field's own resolver, called as strawberry's per-call wrapper calls it, without
    the wrapper: the same converted arguments, ``self``, ``root``/``parent`` and ``Info``.

    The wrapper converts the arguments to Python values on every call and adds two coroutine layers;
    a plan converts literal arguments once (when every converted value is immutable) and awaits the
    resolver's own coroutine. Only for fields with nothing else in between: no field extensions or
    permission classes, no schema exception handler that could apply.
    """

    __slots__ = ("call", "convert", "converted", "field", "strawberry_schema")

    def __init__(
        self, strawberry_schema: Any, field: StrawberryField, call: ResolverCall, fixed: dict[str, Any] | None
    ) -> None:
        self.strawberry_schema, self.field, self.call = strawberry_schema, field, call
        self.convert: ArgumentConverter = argument_converter(strawberry_schema, field)
        self.converted = None  # literal arguments converted once, when no resolver could change them
        if fixed is not None:
            converted = self.convert(fixed, None)
            if all(isinstance(v, _IMMUTABLE) for v in converted.values()):
                self.converted = converted

    @classmethod
    def of(cls, operation: Operation, field: GraphQLField, fixed: dict[str, Any] | None) -> _DirectCall | None:
        """The direct call for ``field``, or None when strawberry's wrapper must run."""
        definition = strawberry_definition(field)
        if not isinstance(definition, StrawberryField) or definition.extensions:
            return None
        strawberry_schema = strawberry_schema_of(operation.schema)
        call = resolver_call(definition)
        if call is None or has_exception_handlers(strawberry_schema, definition) is not False:
            return None  # no resolver of its own, or a handler may apply (or none can be told)
        return cls(strawberry_schema, definition, call, fixed)

    def __call__(self, source: Any, raw_info: Any, **arguments: Any) -> Any:
        info = make_info(self.strawberry_schema, raw_info, self.field)
        kwargs = dict(self.converted) if self.converted is not None else self.convert(arguments, info)
        call = self.call
        for name in call.source_names:
            kwargs[name] = source
        if call.info_name is not None:
            kwargs[call.info_name] = info
        return call.func(source, **kwargs) if call.pass_self else call.func(**kwargs)


def _reader(field: GraphQLField) -> Callable[[Any], Any]:
    """How a plain field's value is read off its parent. Strawberry's own reader makes two calls to
    reach its default resolver (``getattr`` by the Python name, unless the schema's config says
    otherwise); when it is ``getattr``, an ``attrgetter`` reads the same attribute in one."""
    name = plain_attribute(field)
    if name is not None:
        return attrgetter(name)
    resolve = field.resolve
    assert resolve is not None
    return lambda source: resolve(source, None)  # type: ignore[arg-type]


def _switch_variables(operation: Operation) -> tuple[str, ...] | None:
    """The variables a query's ``@skip`` and ``@include`` read; None for a mutation, a subscription,
    or a document with any other directive."""
    definition = operation.operation
    directives = _all(_directives, [definition, *(f.definition for f in operation.fragments.values())])
    if definition.operation is not OperationType.QUERY or any(d.name.value not in _SWITCHES for d in directives):
        return None
    return tuple(sorted({v.name.value for v in _all(_variables, directives)}))


def _directives(node: Any) -> bool:
    return isinstance(node, DirectiveNode)


def _variables(node: Any) -> bool:
    return isinstance(node, VariableNode)


def _all(wanted: Callable[[Any], bool], node: Any) -> list[Any]:
    """Every node of the syntax tree below ``node`` (itself included) that is ``wanted``."""
    if isinstance(node, list | tuple):
        return [found for n in node for found in _all(wanted, n)]
    if not isinstance(node, Node):
        return []
    found = [node] if wanted(node) else []
    return found + [f for k in node.keys if k != "loc" for f in _all(wanted, getattr(node, k))]


async def _settle(awaitables: list[Any]) -> list[Any]:
    """Await one depth's resolvers together, as graphql-core does; a failure in its place."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # cancelled: the time limit, or the request gone
    return results


def _close(values: list[Any]) -> None:
    """Close coroutines that will never be awaited, so nothing warns about them."""
    for value in values:
        if asyncio.iscoroutine(value):
            value.close()
