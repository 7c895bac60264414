"""One test per private part of strawberry and graphql-core the hub relies on (schema/engine_internals.py).

Each asserts the behaviour the compiled plans depend on, on a small schema of its own, so that
``make test-latest`` on a newer release names the touch point that moved.
"""

from __future__ import annotations

import enum
import gc
import weakref
from typing import Any

import pytest
import strawberry
from graphql import (
    Executor,
    GraphQLEnumType,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    get_argument_values,
    parse,
    specified_rules,
    validate,
)
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.config import StrawberryConfig
from strawberry.types.base import StrawberryObjectDefinition

from nrhub.schema.engine_internals import (
    ExecutorView,
    OneOfInputValidationRule,
    StrawberryField,
    argument_converter,
    break_executor_cycle,
    graphql_schema_of,
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
from nrhub.schema.plan import RunView


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


strawberry.enum(Colour)


@strawberry.input
class RangeInput:
    low: int
    high: int = 10


@strawberry.input(one_of=True)
class PickInput:
    code: str | None = strawberry.UNSET
    number: int | None = strawberry.UNSET


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Thing(Named):
    weight: int
    colour: Colour = Colour.RED

    @strawberry.field
    def heavier(self, root: Thing, info: strawberry.Info, by: int = 1) -> int:
        return root.weight + by


@strawberry.type
class Checked:
    code: str

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, Checked)


@strawberry.type
class Oops:
    reason: str


class OopsError(Exception):
    pass


class OopsHandler(strawberry.ExceptionHandler[OopsError, Oops]):
    def handle(self, exception: OopsError, *, field: Any, info: Any) -> Oops:
        return Oops(reason=str(exception))


def _thing() -> Thing:
    return Thing(name="a", weight=3)


@strawberry.type
class Query:
    thing: Thing = strawberry.field(resolver=_thing)
    checked: Checked = strawberry.field(resolver=lambda: Checked(code="c"))

    @strawberry.field
    def within(self, range: RangeInput, colour: Colour) -> str:
        return f"{range.low}-{range.high} {colour.value}"

    @strawberry.field
    def pick(self, choice: PickInput) -> str:
        return str(choice.code or choice.number)

    @strawberry.field
    def risky(self) -> Thing | Oops:
        raise OopsError("no")


SCHEMA = strawberry.Schema(Query, exception_handlers=[OopsHandler()])
CORE = graphql_schema_of(SCHEMA)
THING = CORE.get_type("Thing")
QUERY = CORE.query_type
assert isinstance(THING, GraphQLObjectType) and QUERY is not None


def _executor(query: str, variables: dict[str, Any] | None = None) -> Executor:
    built = Executor.build(CORE, parse(query), None, {"who": "test"}, variables)
    assert isinstance(built, Executor), built
    return built


def test_an_executor_view_builds_the_resolve_info_the_executor_builds() -> None:
    executor = _executor("query Q($by: Int) { thing { heavier(by: $by) } }", {"by": 2})

    class View(ExecutorView):
        __slots__ = ()
        async_helpers = GraphQLResolveInfoHelpers(gather=lambda values: gather_with_cancel(*values), track=print)

    view = View()
    view.schema, view.fragment_definitions, view.fragments = executor.schema, executor.fragment_definitions, {}
    view.operation, view.variable_values, view.context_value = (
        executor.operation,
        executor.variable_values,
        executor.context_value,
    )
    field, nodes = THING.fields["heavier"], [executor.operation.selection_set.selections[0]]
    path = Path(Path(None, "thing", "Query"), "heavier", "Thing")
    ours = view.build_resolve_info(field, nodes, THING, path)  # type: ignore[arg-type]
    theirs = executor.build_resolve_info(field, nodes, THING, path)  # type: ignore[arg-type]
    for name in ("field_name", "return_type", "parent_type", "path", "schema", "operation", "variable_values"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.context == {"who": "test"} and ours.root_value is None
    assert ours.variable_values.coerced == {"by": 2}


async def test_a_plans_resolve_info_helpers_work_as_the_executors_do() -> None:
    # A resolver may gather its own awaitables through info.async_helpers: under a plan as under
    # graphql-core's executor, which takes them as one sequence.
    async def one(n: int) -> int:
        return n

    executor = _executor("{ thing { name } }")
    assert await executor.async_helpers.gather([one(1), one(2)]) == [1, 2]
    assert await RunView.async_helpers.gather([one(1), one(2)]) == [1, 2]


def test_the_graphql_core_schema_is_found_from_the_strawberry_one() -> None:
    assert isinstance(CORE, GraphQLSchema) and CORE.query_type is not None and CORE.query_type.name == "Query"


def test_an_executor_whose_cycle_is_broken_is_freed_without_the_collector() -> None:
    gc.disable()
    try:
        kept = _executor("{ thing { name } }")
        kept_ref = weakref.ref(kept)
        del kept
        assert kept_ref() is not None  # the cycle: only the collector would free it
        freed = _executor("{ thing { name } }")
        freed_ref = weakref.ref(freed)
        break_executor_cycle(freed)
        del freed
        assert freed_ref() is None
    finally:
        gc.enable()
        gc.collect()


def test_root_fields_apply_skip_include_and_fragments() -> None:
    query = "query Q($s: Boolean!) { thing { name } ...F @skip(if: $s) } fragment F on Query { t: thing { weight } }"
    assert list(root_fields(_executor(query, {"s": False}), QUERY)) == ["thing", "t"]
    grouped = root_fields(_executor(query, {"s": True}), QUERY)
    assert list(grouped) == ["thing"] and grouped["thing"][0].node.name.value == "thing"


def test_subfields_collect_a_types_selection_below_a_field() -> None:
    executor = _executor("{ thing { name ... on Thing { weight } ... on Named { n: name } } }")
    details = root_fields(executor, QUERY)["thing"]
    assert list(subfields(executor, THING, details)) == ["name", "weight", "n"]


def test_the_strawberry_definition_is_kept_on_built_types_and_fields() -> None:
    assert isinstance(strawberry_definition(THING), StrawberryObjectDefinition)
    field = strawberry_definition(THING.fields["weight"])
    assert isinstance(field, StrawberryField) and field.python_name == "weight"
    assert strawberry_definition(CORE.get_type("__Schema")) is None  # type: ignore[arg-type]


def test_the_strawberry_schema_is_found_from_the_graphql_core_one() -> None:
    assert strawberry_schema_of(CORE) is SCHEMA
    assert strawberry_schema_of(GraphQLSchema()) is None


def test_exception_handlers_are_told_per_field() -> None:
    assert has_exception_handlers(SCHEMA, strawberry_definition(QUERY.fields["thing"])) is False
    assert has_exception_handlers(SCHEMA, strawberry_definition(QUERY.fields["risky"])) is True
    assert has_exception_handlers(None, strawberry_definition(QUERY.fields["thing"])) is None


def test_a_resolver_call_names_the_parameters_strawberry_fills() -> None:
    call = resolver_call(strawberry_definition(THING.fields["heavier"]))
    assert call is not None
    assert call.pass_self and call.source_names == ["root"] and call.info_name == "info"
    assert call.func(None, root=Thing(name="a", weight=3), info=None, by=4) == 7
    assert resolver_call(strawberry_definition(THING.fields["weight"])) is None  # no resolver of its own


def test_arguments_convert_to_the_python_values_resolvers_take() -> None:
    executor = _executor("{ within(range: { low: 1 }, colour: GREEN) }")
    node = executor.operation.selection_set.selections[0]
    coerced = get_argument_values(QUERY.fields["within"], node, executor.variable_values)  # type: ignore[arg-type]
    convert = argument_converter(SCHEMA, strawberry_definition(QUERY.fields["within"]))
    converted = convert(coerced, None)
    assert converted["range"] == RangeInput(low=1, high=10)
    assert isinstance(converted["range"], RangeInput) and converted["colour"] is Colour.GREEN


def test_strawberry_info_wraps_the_raw_resolve_info() -> None:
    executor = _executor("{ thing { heavier } }")
    nodes = [executor.operation.selection_set.selections[0].selection_set.selections[0]]  # type: ignore[attr-defined]
    raw = executor.build_resolve_info(THING.fields["heavier"], nodes, THING, Path(None, "heavier", "Thing"))  # type: ignore[arg-type]
    field = strawberry_definition(THING.fields["heavier"])
    info = make_info(SCHEMA, raw, field)
    assert isinstance(info, strawberry.Info)
    assert info.context == {"who": "test"} and info.field_name == "heavier" and info.python_name == "heavier"


def test_default_resolvers_are_told_from_resolvers_of_their_own() -> None:
    assert is_default_resolver(THING.fields["weight"])
    assert not is_default_resolver(THING.fields["heavier"])
    assert not is_default_resolver(QUERY.fields["thing"])


def test_a_plain_field_reads_its_python_attribute_and_needs_no_info() -> None:
    assert plain_attribute(THING.fields["weight"]) == "weight"
    config = StrawberryConfig(default_resolver=lambda source, name: getattr(source, name))
    own = graphql_schema_of(strawberry.Schema(Query, config=config)).get_type("Thing")
    assert isinstance(own, GraphQLObjectType) and plain_attribute(own.fields["weight"]) is None
    resolve = THING.fields["colour"].resolve
    assert resolve is not None and resolve(_thing(), None) is Colour.RED  # type: ignore[arg-type]


def test_an_own_is_type_of_is_told_from_strawberrys_isinstance_check() -> None:
    checked = CORE.get_type("Checked")
    assert isinstance(checked, GraphQLObjectType)
    assert has_own_is_type_of(checked) and not has_own_is_type_of(THING)
    assert THING.is_type_of is not None  # strawberry's, for a type with interfaces: no info read
    assert THING.is_type_of(_thing(), None) and not THING.is_type_of(Checked(code="c"), None)  # type: ignore[arg-type]


def test_the_python_enum_of_a_strawberry_enum_type() -> None:
    colour = CORE.get_type("Colour")
    assert isinstance(colour, GraphQLEnumType)
    assert python_enum_of(colour) is Colour
    assert python_enum_of(GraphQLEnumType("Plain", {"A": 1})) is None


@pytest.mark.parametrize(("choice", "errors"), [('{ code: "x" }', 0), ('{ code: "x", number: 1 }', 1), ("{}", 1)])
def test_the_one_of_rule_refuses_anything_but_exactly_one_field(choice: str, errors: int) -> None:
    document = parse(f"{{ pick(choice: {choice}) }}")
    assert len(validate(CORE, document, (*specified_rules, OneOfInputValidationRule))) == errors
