"""Every private part of strawberry and graphql-core the hub relies on, each behind one name here.

The compiled plans (schema/plan.py) do what graphql-core's executor and strawberry's field wrapper
do, without either, so they reach parts neither library promises to keep: helpers outside
``graphql.__all__``, methods marked private, strawberry's resolver internals and underscore
attributes. Each is wrapped below with a docstring saying what it relies on, and
tests/schema/test_engine_internals.py asserts that behaviour, one test per touch point, so that a
new release that moves one (``make test-latest``) fails there, by name, rather than deep inside a
plan. Other modules import these, never the libraries' internals.

pyproject.toml bounds both libraries to their next minor release for this reason.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, NamedTuple

from graphql import (
    Executor,
    GraphQLEnumType,
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    OperationDefinitionNode,
    VariableValues,
)
from graphql.execution.collect_fields import FieldDetailsList, collect_fields, collect_subfields
from graphql.pyutils import Path, is_awaitable
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

__all__ = [
    "ArgumentConverter",
    "ExecutorView",
    "FieldDetailsList",
    "OneOfInputValidationRule",
    "ResolverCall",
    "StrawberryField",
    "argument_converter",
    "break_executor_cycle",
    "graphql_schema_of",
    "has_exception_handlers",
    "has_own_is_type_of",
    "is_default_resolver",
    "make_info",
    "plain_attribute",
    "python_enum_of",
    "resolver_call",
    "root_fields",
    "strawberry_definition",
    "strawberry_schema_of",
    "subfields",
]

# OneOfInputValidationRule: strawberry's validation rule for @oneOf inputs, which graphql-core's
# specified_rules do not include. It lives in strawberry.schema.validation_rules.one_of, a module of
# strawberry's schema internals; the hub adds it to its own validation rules.


# graphql-core


class ExecutorView:
    """What ``Executor.build_resolve_info`` reads of an executor, without building one.

    Relies on graphql-core 3.3's ``Executor.build_resolve_info`` (documented ``:meta private:``)
    reading only these attributes of ``self``: ``schema``, ``fragment_definitions``, ``root_value``,
    ``operation``, ``variable_values``, ``context_value``, ``is_awaitable``, ``abort_signal`` and
    ``async_helpers``. Subclasses set the slots and ``async_helpers``.
    """

    __slots__ = ("context_value", "fragment_definitions", "fragments", "operation", "schema", "variable_values")
    root_value: Any = None
    abort_signal: Any = None
    is_awaitable = staticmethod(is_awaitable)
    async_helpers: GraphQLResolveInfoHelpers
    schema: GraphQLSchema
    operation: OperationDefinitionNode
    variable_values: VariableValues

    # build_resolve_info(field, nodes, parent_type, path): the resolve info graphql-core gives a
    # resolver. graphql-core's own function, not a wrapper: plans call it for every resolver.
    build_resolve_info: Callable[[GraphQLField, list[Any], GraphQLObjectType, Path], GraphQLResolveInfo[Any]]
    build_resolve_info = Executor.build_resolve_info  # type: ignore[assignment]  # bound to the view


def break_executor_cycle(executor: Executor[Any]) -> None:
    """Let reference counting free ``executor`` (and the context and loaders it holds) once its run is over.

    Relies on graphql-core's executor referring to itself only through ``async_helpers``, which holds
    two of its bound methods: without that cycle, no request's executor waits for the cyclic collector.
    """
    executor.async_helpers = None  # type: ignore[assignment]


def root_fields(operation: Any, root_type: GraphQLObjectType) -> dict[str, FieldDetailsList]:
    """The operation's root fields by response key, ``@skip``/``@include`` and fragments applied.

    Relies on ``graphql.execution.collect_fields.collect_fields`` (outside ``graphql.__all__``): its
    signature and its result's ``grouped_field_set``. ``operation`` is an executor or a view of one.
    """
    collected = collect_fields(
        operation.schema, operation.fragments, operation.variable_values, root_type, operation.operation
    )
    return collected.grouped_field_set


def subfields(operation: Any, type_: GraphQLObjectType, details: FieldDetailsList) -> dict[str, FieldDetailsList]:
    """The fields selected on a value of ``type_`` below the fields ``details``, by response key.

    Relies on ``graphql.execution.collect_fields.collect_subfields`` (outside ``graphql.__all__``):
    its signature and its result's ``grouped_field_set``.
    """
    collected = collect_subfields(
        operation.schema, operation.fragments, operation.variable_values, operation.operation, type_, details
    )
    return collected.grouped_field_set


# strawberry


def strawberry_definition(element: GraphQLField | GraphQLObjectType) -> Any:
    """The strawberry definition a schema element was built from (None if strawberry did not build it).

    Relies on strawberry keeping it in the element's ``extensions`` under
    ``GraphQLCoreConverter.DEFINITION_BACKREF``: a ``StrawberryField`` for a field, a
    ``StrawberryObjectDefinition`` for an object type.
    """
    return (element.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)


def graphql_schema_of(schema: Any) -> GraphQLSchema:
    """The graphql-core schema a strawberry ``Schema`` built and runs.

    Relies on the underscore attribute ``_schema`` of strawberry's ``Schema``.
    """
    built: GraphQLSchema = schema._schema
    return built


def strawberry_schema_of(schema: GraphQLSchema) -> Any:
    """The strawberry ``Schema`` that built ``schema``, or None.

    Relies on the underscore attribute ``_strawberry_schema`` strawberry sets on the graphql-core schema.
    """
    return getattr(schema, "_strawberry_schema", None)


def has_exception_handlers(strawberry_schema: Any, field: StrawberryField) -> bool | None:
    """Whether a schema exception handler could apply to ``field``; None when it cannot be told.

    Relies on the private ``GraphQLCoreConverter._get_field_exception_handlers(field)``, which
    returns the handlers (an empty tuple when there are none).
    """
    converter = getattr(strawberry_schema, "schema_converter", None)
    handlers = getattr(converter, "_get_field_exception_handlers", None)
    if handlers is None:
        return None
    return bool(handlers(field))


class ResolverCall(NamedTuple):
    """How strawberry's field wrapper calls a resolver function (what it passes, under which names)."""

    func: Callable[..., Any]
    pass_self: bool  # a method: the parent value is its first positional argument
    source_names: list[str]  # the parameters given the parent value (``root``, ``parent``)
    info_name: str | None  # the parameter given strawberry's ``Info``


def resolver_call(field: StrawberryField) -> ResolverCall | None:
    """How to call ``field``'s own resolver as strawberry does; None when it has none.

    Relies on ``StrawberryField.base_resolver`` (a ``StrawberryResolver``) and its ``wrapped_func``,
    ``self_parameter``, ``parent_parameter``, ``root_parameter`` and ``info_parameter``.
    """
    resolver = field.base_resolver
    if resolver is None or not callable(resolver.wrapped_func):
        return None
    sources = [p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None]
    info = resolver.info_parameter.name if resolver.info_parameter else None
    return ResolverCall(resolver.wrapped_func, resolver.self_parameter is not None, sources, info)


ArgumentConverter = Callable[[dict[str, Any], Any], dict[str, Any]]


def argument_converter(strawberry_schema: Any, field: StrawberryField) -> ArgumentConverter:
    """Converts ``field``'s coerced GraphQL arguments to the Python values its resolver takes
    (inputs to their classes, enums to members, scalars parsed), given strawberry's ``Info`` or None.

    Relies on ``strawberry.types.arguments.convert_arguments`` and on the schema's
    ``schema_converter.scalar_registry`` and ``schema_converter.config``.
    """
    converter = strawberry_schema.schema_converter
    registry, config, arguments = converter.scalar_registry, converter.config, field.arguments

    def convert(values: dict[str, Any], info: Any) -> dict[str, Any]:
        return convert_arguments(values, arguments, registry, config, info)

    return convert


def make_info(strawberry_schema: Any, raw_info: GraphQLResolveInfo[Any], field: StrawberryField) -> Any:
    """Strawberry's ``Info`` for a resolver, as its field wrapper builds it.

    Relies on the schema's ``config.info_class`` taking the private keywords ``_raw_info`` and
    ``_field``.
    """
    return strawberry_schema.config.info_class(_raw_info=raw_info, _field=field)


def is_default_resolver(field: GraphQLField) -> bool:
    """Whether ``field`` is a strawberry field without a resolver of its own (a parent's attribute).

    Relies on the underscore attribute ``_is_default`` strawberry sets on such fields' ``resolve``.
    """
    return getattr(field.resolve, "_is_default", False)


def plain_attribute(field: GraphQLField) -> str | None:
    """The Python attribute a plain strawberry field (``is_default_resolver``) reads off its parent
    when it reads it with ``getattr`` (the default); None otherwise (then its ``resolve`` is called,
    with info None).

    Relies on ``StrawberryField.default_resolver`` and ``StrawberryField.python_name``, and on a
    default resolver not reading its info.
    """
    definition = strawberry_definition(field)
    if isinstance(definition, StrawberryField) and definition.default_resolver is getattr and definition.python_name:
        return definition.python_name
    return None


def has_own_is_type_of(type_: GraphQLObjectType) -> bool:
    """Whether a strawberry type was given its own ``is_type_of`` (which may read the resolve info).

    Relies on ``StrawberryObjectDefinition.is_type_of``. Strawberry's own check, set on the
    graphql-core type for types with interfaces, is an ``isinstance`` that reads no info.
    """
    definition = strawberry_definition(type_)
    return definition is not None and definition.is_type_of is not None


def python_enum_of(type_: GraphQLEnumType) -> type[Enum] | None:
    """The Python enum a strawberry enum type was built from, or None.

    Relies on strawberry's enum type (``CustomGraphQLEnumType``) holding it as ``wrapped_cls``.
    """
    members = getattr(type_, "wrapped_cls", None)
    return members if isinstance(members, type) and issubclass(members, Enum) else None
