"""Compiled plans (schema/plan.py) answer exactly what graphql-core answers, on the demo data.

Each document runs three ways against the real database: through graphql-core alone (an executor
without plans), through the hub's executor (plans on), and through the compiled plan directly. A
plannable document's plan must give graphql-core's answer byte for byte (errors of its nullable
root fields included); a run it cannot answer must raise Fallback, and the hub's executor must then
answer what graphql-core answers.
"""

from __future__ import annotations

import copy
import random
from datetime import date
from enum import Enum
from types import SimpleNamespace
from typing import Any, NewType

import orjson
import pytest
import strawberry
from graphql import ExecutionResult, GraphQLObjectType, get_named_type, graphql, is_leaf_type, parse
from graphql import Executor as OperationExecutor
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig

from nrhub.auth.principal import Grants, Principal
from nrhub.resolvers.loaders import Loaders
from nrhub.resolvers.scope import resolve_scope
from nrhub.schema.build import schema
from nrhub.schema.context import Context
from nrhub.schema.execution import Executor, format_error
from nrhub.schema.limits import Limits
from nrhub.schema.plan import Fallback, Plan, _DirectCall, compile_plan

POINT = 'observation(indicator: "RETAIL", unit: "79", period: "2026-M03")'

# Documents a plan covers, and whose every run succeeds (with variables where they have some).
ANSWERED: list[tuple[str, list[dict[str, Any] | None]]] = [
    (
        f"{{ __typename {POINT} {{ __typename id period disaggregation value status "
        "provenance { kind submissionId source storedParts stale ageSeconds } } }",
        [None],
    ),
    (
        # The same plan with other variables: arguments from variables are coerced per run.
        'query Point($i: String!, $u: String!, $p: Period!, $d: String! = "") '
        "{ observation(indicator: $i, unit: $u, period: $p, disaggregation: $d) { value status period } }",
        [
            {"i": "RETAIL", "u": "79", "p": "2026-M03"},
            {"i": "RETAIL", "u": "01", "p": "2026-M04"},
            {"i": "RETAIL", "u": "79", "p": "2030-M01"},  # no value: null, no error
        ],
    ),
    (
        # Several root fields (run together), aliases, a named and an inline fragment, merged fields.
        '{ a: observation(indicator: "RETAIL", unit: "79", period: "2026-M03") { ...V status } '
        'b: observation(indicator: "RETAIL", unit: "01", period: "2026-M03") { ... on Observation { value } '
        "value amount: value } } fragment V on Observation { value period }",
        [None],
    ),
    (
        '{ table(indicators: ["RETAIL", "UNEMP"], parent: "VN", level: PROVINCE) '
        "{ period columns { code unitOfMeasure decimals periodicity } rows } }",
        [None],
    ),
    (
        '{ series(indicator: "RETAIL", units: ["79", "01"], from: "2025-M05", to: "2025-M07") '
        "{ disaggregation periods rows } }",
        [None],
    ),
    (
        'query Agg($u: String!, $p: Period!) { aggregate(indicator: "RETAIL", unit: $u, period: $p) '
        "{ period value status unitOfMeasure provenance { kind storedParts } } "
        'again: aggregate(indicator: "RETAIL", unit: $u, period: $p) { provenance { source stale } } }',
        [{"u": "79", "p": "2026-Q1"}, {"u": "VN", "p": "2025"}, {"u": "79", "p": "2024"}],
    ),
    (
        '{ valueHistory(indicator: "RETAIL", unit: "79", period: "2026-M03") { __typename } }',
        [None],
    ),
    # Resolvers below the root: loaders behind them, awaited a depth at a time.
    (
        f"{{ {POINT} {{ value indicator {{ code field {{ code nameEn }} responsibleAgency {{ code }} }} "
        "unit { code nameEn parent { code } } } }",
        [None],
    ),
    (
        "{ indicators(first: 60) { pageInfo { hasNextPage endCursor } edges { cursor node { code "
        "nameEn field { code nameEn } responsibleAgency { code nameEn } dimensions { code values { code } } "
        "numerator { code } } } } }",
        [None],
    ),
    (
        "query Lineage($code: String!, $on: Date) { unit(code: $code, validOn: $on) { code nameEn "
        "predecessors { relation unit { code nameEn validTo } } successors { unit { code validFrom } } } }",
        [{"code": "08", "on": None}, {"code": "08", "on": "2024-01-01"}, {"code": "79", "on": None}],
    ),
    (
        "{ regimes { code frequency issuingAgency { code } reporters { code } items { required indicator { code } } } }",
        [None],
    ),
    # @skip and @include: one plan per value of the variables they read, each its own selection.
    (
        f"query($skip: Boolean!, $full: Boolean = true) {{ {POINT} @skip(if: $skip) {{ value "
        "... @include(if: $full) { status period } provenance @skip(if: $full) { kind } "
        "unit @include(if: true) { code } } }",
        [{"skip": False}, {"skip": False, "full": False}, {"skip": True}, {"skip": False, "full": True}],
    ),
]

# Plannable documents whose nullable root fields fail: null and the error, from the plan itself.
FAILING_ROOTS: list[tuple[str, dict[str, Any] | None]] = [
    (f"{{ {POINT.replace('79', '99')} {{ value }} }}", None),  # NOT_FOUND
    ('{ observation(indicator: "NOPE", unit: "79", period: "2026-M03") { value } }', None),  # NOT_FOUND
    # One root field fails, the other still answers: partial data.
    (
        f'{{ ok: {POINT} {{ value }} bad: observation(indicator: "RETAIL", unit: "99", period: "2026") {{ value }} }}',
        None,
    ),
]

# Documents outside what plans cover: graphql-core runs them.
NOT_PLANNED = ["{ __schema { queryType { name } } }", '{ __type(name: "Query") { name } }']


def response(result: ExecutionResult) -> dict[str, Any]:
    """The response body as the HTTP endpoint writes it, decoded."""
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [format_error(e, "test", suggestions=False) for e in result.errors]
    return orjson.loads(orjson.dumps(body))


@pytest.fixture
async def run(pool, all_indicators):
    """Run a document through an executor, as the HTTP endpoint does; the response as JSON."""
    # Generous limits: the random documents below grow with the schema, and limits are not what is compared.
    limits = Limits(max_depth=12, max_aliases=200, max_directives=20, max_string_length=10_000)
    executors = {
        plans: Executor(limits, max_tokens=3000, timeout=10, suggestions=False, plans=plans) for plans in (True, False)
    }

    async def context(grants: Grants) -> Context:
        scope = await resolve_scope(pool, grants)
        today = date.today()
        return Context(pool, Principal(grants=grants), scope, Loaders(pool, scope, today), 500, today, "test")

    async def execute(query: str, variables: dict | None, *, plans: bool, grants: Grants | None = None) -> dict:
        grants = grants or Grants(all_indicators, None)
        variables = copy.deepcopy(variables)  # each run its own, as each HTTP request parses its own
        executor = executors[plans]
        prepared = executor.prepare(query, None, introspection=True)
        assert not prepared.errors, prepared.errors
        return response(await executor.run(prepared, variables, None, await context(grants)))

    async def plan_only(query: str, variables: dict | None) -> tuple[Any, Any]:
        """The compiled plan and its operation for one run (None: the document has no plan)."""
        document = executors[True].prepare(query, None, introspection=True).document
        variables = copy.deepcopy(variables)
        operation = OperationExecutor.build(
            schema._schema, document, None, await context(Grants(all_indicators, None)), variables
        )
        assert not isinstance(operation, list), operation
        return compile_plan(operation), operation

    execute.plan_only = plan_only  # type: ignore[attr-defined]
    return execute


@pytest.mark.parametrize(("query", "runs"), ANSWERED, ids=[q[:60] for q, _ in ANSWERED])
async def test_a_plan_answers_what_graphql_core_answers(run, query: str, runs: list) -> None:
    answered = 0
    for variables in runs:
        expected = await run(query, variables, plans=False)
        assert "errors" not in expected, expected
        plan, operation = await run.plan_only(query, variables)
        assert plan is not None, "the document should have a plan"
        answer = response(await plan.run(operation))
        assert answer == expected
        data = answer["data"]
        assert await run(query, variables, plans=True) == expected
        answered += any(v is not None for v in data.values())
    assert answered, "at least one run answers with a value, so the comparison is not only of nulls"


async def test_variables_are_not_frozen_into_the_plan(run) -> None:
    query, runs = ANSWERED[1]
    first, second = [await run(query, v, plans=True) for v in runs[:2]]
    assert first["data"]["observation"]["value"] != second["data"]["observation"]["value"]
    assert second == await run(query, runs[1], plans=False)


async def test_later_runs_of_a_document_build_no_executor_and_answer_the_same(run, monkeypatch) -> None:
    # After a document's first run its plan runs on a view of that run's executor (RunView): the
    # variables coerced, no Executor.build. Whatever graphql-core must answer still gets its executor.
    built: list[Any] = []  # the documents Executor.build was given
    build = OperationExecutor.build
    monkeypatch.setattr(OperationExecutor, "build", lambda *a, **k: built.append(a[1]) or build(*a, **k))
    query, runs = ANSWERED[1]
    answers = [await run(query, variables, plans=True) for variables in runs]
    assert len(built) == 1  # the first run only
    built.clear()
    assert answers == [await run(query, variables, plans=False) for variables in runs]
    assert len(built) == len(runs)  # graphql-core alone builds one per run, the comparison is real
    built.clear()
    # Variables that do not coerce on a later run: graphql-core's errors, still without an executor.
    for wrong in ({"i": "RETAIL", "u": "79"}, {"i": "RETAIL", "u": "79", "p": "2026-13"}, {"i": 7, "u": "79"}):
        refused = await run(query, wrong, plans=True)
        assert refused["data"] is None and refused["errors"], refused
        assert len(built) == 0
        assert refused == await run(query, wrong, plans=False)
        built.clear()

    # A later run its plan gives up on goes to graphql-core, on an executor built for it.
    async def gives_up(plan: Plan, operation: Any) -> None:
        raise Fallback

    monkeypatch.setattr(Plan, "run", gives_up)
    assert await run(query, runs[0], plans=True) == answers[0]
    assert len(built) == 1


@pytest.mark.parametrize(("query", "variables"), FAILING_ROOTS, ids=[q[:60] for q, _ in FAILING_ROOTS])
async def test_a_failing_root_field_is_answered_as_graphql_core_answers_it(
    run, query: str, variables: dict | None
) -> None:
    expected = await run(query, variables, plans=False)
    assert expected["errors"]
    plan, operation = await run.plan_only(query, variables)
    assert plan is not None
    assert response(await plan.run(operation)) == expected  # no Fallback: its resolvers ran once
    assert await run(query, variables, plans=True) == expected


async def test_region_and_denied_codes_through_a_plan(run, all_indicators) -> None:
    # A table with a code the caller may not read answers the rest and reports the code at its path
    # (a side error: the resolver succeeds). A unit outside the caller's region is FORBIDDEN (the
    # resolver raises).
    grants = Grants(all_indicators - {"UNEMP"}, frozenset({"79"}))
    table = '{ table(indicators: ["RETAIL", "UNEMP"], units: ["79"]) { columns { code } rows } }'
    expected = await run(table, None, plans=False, grants=grants)
    assert [c["code"] for c in expected["data"]["table"]["columns"]] == ["RETAIL"]
    assert [e["extensions"]["code"] for e in expected["errors"]] == ["FORBIDDEN"]
    assert await run(table, None, plans=True, grants=grants) == expected
    other_region = f"{{ {POINT.replace('79', '01')} {{ value }} }}"
    expected = await run(other_region, None, plans=False, grants=grants)
    assert [e["extensions"]["code"] for e in expected["errors"]] == ["FORBIDDEN"]
    assert await run(other_region, None, plans=True, grants=grants) == expected


@pytest.mark.parametrize("query", NOT_PLANNED)
async def test_documents_outside_the_plans_run_through_graphql_core(run, query: str) -> None:
    variables = {"skip": False} if "$skip" in query else None
    plan, _ = await run.plan_only(query, variables)
    assert plan is None
    assert await run(query, variables, plans=True) == await run(query, variables, plans=False)


# Values the demo data never produce, on a small schema of the test's own: a null where the schema
# promises a value, a list that is not one, a scalar that refuses its value.
@strawberry.interface
class Named:
    name: str


def _loud(root: Thing) -> str:  # a resolver given its parent as ``root``
    return root.name.upper()


@strawberry.type
class Thing(Named):
    note: str | None
    sizes: list[int] | None
    loud: str = strawberry.field(resolver=_loud)

    @strawberry.field
    async def parts(self, fail: bool = False) -> list[Thing]:
        if fail:
            raise ValueError("no parts")
        return [Thing(name=f"{self.name}.{n}", note=None, sizes=None) for n in range(2)]


Odd = NewType("Odd", int)


@strawberry.enum
class Size(Enum):
    SMALL = "s"
    LARGE = "l"


@strawberry.input
class Window:
    first_year: int
    last_year: int = 2030


class Allowed(BasePermission):
    message = "never refused"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return True


@strawberry.type
class ToyQuery:
    @strawberry.field
    def thing(self, name: str | None, sizes: JSON | None = None) -> Thing | None:
        return Thing(name=name, note=None, sizes=sizes)  # type: ignore[arg-type]

    @strawberry.field
    async def things(self, count: int) -> list[Thing]:
        return [Thing(name=f"t{n}", note=None, sizes=[n]) for n in range(count)]

    @strawberry.field
    def odd(self, value: int) -> Odd | None:  # type: ignore[valid-type]
        return value  # type: ignore[return-value]

    @strawberry.field
    def take(self, data: JSON) -> str:
        return data.pop("k")  # alters its argument, as strawberry's _entities does

    @strawberry.field
    async def broken(self) -> str | None:
        raise ValueError("broken")

    @strawberry.field
    def broken_now(self) -> str | None:
        raise ValueError("broken before any await")

    @strawberry.field
    async def strict(self) -> str:
        raise ValueError("no value, and null is not allowed")

    @strawberry.field
    def lazy_things(self, count: int) -> list[Thing]:
        async def one(n: int) -> Thing:
            return Thing(name=f"lazy{n}", note=None, sizes=None)

        return [one(n) for n in range(count)]  # type: ignore[misc]  # awaitable items, as _entities returns

    @strawberry.field
    def named(self, impostor: bool = False) -> list[Named]:
        first: Any = SimpleNamespace(name="not a thing") if impostor else Thing(name="t", note="n", sizes=[1])
        return [first, Thing(name="u", note=None, sizes=None)]

    @strawberry.field
    def echo(self, info: strawberry.Info, size: Size, window: Window | None = None, page_size: int = 10) -> str:
        span = f"{window.first_year}-{window.last_year}" if window else "-"
        return f"{size.value}/{span}/{page_size}/{info.path.key}/{info.context['who']}"

    @strawberry.field
    def size_of(self, raw: str) -> Size | None:
        return Size(raw) if raw == "s" else raw  # type: ignore[return-value]  # a member, or a raw value

    @strawberry.field
    def stretch(self, window: Window) -> int:
        window.last_year += 1  # alters its converted argument
        return window.last_year

    @strawberry.field(permission_classes=[Allowed])
    def guarded(self) -> str:
        return "let in"

    @strawberry.field
    def impostor(self) -> Thing | None:
        return SimpleNamespace(name="not a thing")  # type: ignore[return-value]


ODD_ONLY = strawberry.scalar(name="Odd", serialize=lambda v: v if v % 2 else None, parse_value=int)
TOY = strawberry.Schema(ToyQuery, config=StrawberryConfig(scalar_map={Odd: ODD_ONLY}))


@pytest.mark.parametrize(
    ("query", "planned"),
    [
        # The plan answers, with graphql-core's data and errors.
        ('{ thing(name: "a", sizes: [1, 2]) { __typename name note sizes } }', True),
        ('{ thing(name: "a") { name } broken later: broken broken_now: brokenNow }', True),  # nullable roots
        ("{ lazyThings(count: 3) { name parts { name } } }", True),  # awaitable list items
        ("{ named { __typename name ... on Thing { sizes note } } }", True),  # an interface
        ("{ named(impostor: true) { name } }", False),  # its runtime type cannot be resolved
        # graphql-core answers: the plan gives way.
        ("{ strict broken }", False),  # a non-null root field fails: data is null
        ("{ things(count: 3) { name sizes } one: things(count: 1) { name } }", True),
        ("{ thing(name: null) { name } }", False),  # null for a non-null field
        ('{ thing(name: "a", sizes: 7) { sizes } }', False),  # not a list
        ('{ thing(name: "a", sizes: ["x"]) { sizes } }', False),  # Int refuses "x"
        ('{ a: sizeOf(raw: "s") b: sizeOf(raw: "l") }', True),  # an enum's member, and its raw value
        ('{ sizeOf(raw: "x") }', False),  # a value the enum does not have
        ("{ odd(value: 3) }", True),
        ("{ odd(value: 2) }", False),  # the scalar gives no value
        ("{ impostor { name } }", False),  # not a Thing
        ('{ thing(name: "a") { parts { name parts { name } } } }', True),  # awaited a depth at a time
        ('{ thing(name: "a") { parts { name parts(fail: true) { name } } } }', False),  # fails at depth 3
    ],
)
async def test_completion_against_graphql_core(query: str, planned: bool) -> None:
    document = parse(query)
    operation = OperationExecutor.build(TOY._schema, document)
    assert not isinstance(operation, list)
    plan = compile_plan(operation)
    assert plan is not None
    expected = await graphql(TOY._schema, query)
    if planned:
        assert await plan.run(operation) == expected
    else:
        assert expected.errors
        with pytest.raises(Fallback):
            await plan.run(operation)


async def test_a_run_cannot_alter_the_next_runs_arguments() -> None:
    document = parse('{ take(data: {k: "v"}) }')
    plan = compile_plan(OperationExecutor.build(TOY._schema, document))
    assert plan is not None
    for _ in range(2):
        assert (await plan.run(OperationExecutor.build(TOY._schema, document))).data == {"take": "v"}


@pytest.mark.parametrize(
    ("query", "variables", "field", "direct", "answer"),
    [
        ("{ echo(size: LARGE) }", None, "echo", True, "l/-/10/echo/ana"),
        (
            "{ e: echo(size: SMALL, window: {firstYear: 2020}, pageSize: 5) }",
            None,
            "echo",
            True,
            "s/2020-2030/5/e/ana",
        ),
        (
            "query ($w: Window, $n: Int!) { echo(size: SMALL, window: $w, pageSize: $n) }",
            {"w": {"firstYear": 2001, "lastYear": 2002}, "n": 3},
            "echo",
            True,
            "s/2001-2002/3/echo/ana",
        ),
        ("{ stretch(window: {firstYear: 1}) }", None, "stretch", True, 2031),
        ("{ guarded }", None, "guarded", False, "let in"),  # a permission class: strawberry's wrapper runs it
    ],
)
async def test_resolvers_called_directly_get_strawberrys_arguments(
    query: str, variables: dict | None, field: str, direct: bool, answer: Any
) -> None:
    # Strawberry's wrapper is skipped only where nothing sits in it: the resolver still gets its
    # enums, input objects, Python argument names, Info and context, literal or variable, as before.
    plan = None
    for _ in range(2):  # a second run: arguments converted once are not altered by the first
        result, plan = await planned(TOY, query, {"who": "ana"}, variables, plan)
        assert next(iter(result.data.values())) == answer
    operation = OperationExecutor.build(TOY._schema, parse(query), None, None, variables)
    assert not isinstance(operation, list)
    assert (_DirectCall.of(operation, TOY._schema.query_type.fields[field], None) is not None) == direct


async def planned(
    toy: strawberry.Schema, query: str, context: Any = None, variables: dict | None = None, plan: Any = None
) -> tuple[ExecutionResult, Any]:
    """The compiled plan's answer (checked equal to graphql-core's) and the plan, compiled unless given."""
    operation = OperationExecutor.build(toy._schema, parse(query), None, context, variables)
    assert not isinstance(operation, list)
    plan = plan or compile_plan(operation)
    assert plan is not None
    result = await plan.run(operation)
    assert result == await graphql(toy._schema, query, context_value=context, variable_values=variables)
    return result, plan


async def test_a_resolver_given_its_parent_as_root() -> None:
    result, _ = await planned(TOY, '{ thing(name: "ab") { loud parts { loud } } }')
    assert result.data == {"thing": {"loud": "AB", "parts": [{"loud": "AB.0"}, {"loud": "AB.1"}]}}


@strawberry.type
class Row:
    label: str


@strawberry.type
class RowQuery:
    @strawberry.field
    def row(self) -> Row:
        return {"label": "read by the schema's own default resolver"}  # type: ignore[return-value]


ROWS = strawberry.Schema(RowQuery, config=StrawberryConfig(default_resolver=lambda source, name: source[name]))


async def test_plain_fields_are_read_by_the_schemas_own_default_resolver() -> None:
    # The hub's schema reads attributes (getattr); a schema whose config says otherwise is obeyed.
    result, _ = await planned(ROWS, "{ row { label } }")
    assert result.data == {"row": {"label": "read by the schema's own default resolver"}}


@pytest.mark.parametrize("plans", [True, False])
async def test_plans_can_be_turned_off(run, monkeypatch, plans: bool) -> None:
    # HUB_COMPILED_PLANS=false: every query through graphql-core, which the comparisons above rely on.
    compiled = []
    monkeypatch.setattr("nrhub.schema.plan.compile_plan", lambda operation: compiled.append(operation) or None)
    answer = await run(f"{{ {POINT} {{ value }} }}", None, plans=plans)
    assert answer["data"]["observation"]["value"] is not None
    assert len(compiled) == (1 if plans else 0)


# Random selections over the real schema: every field of the types below the roots, aliases,
# repeated fields, inline fragments, down to three levels, for a caller with every grant and one
# limited to a region. Seeded, so a failure names the document that differed.
RANDOM_ROOTS = [
    "indicators(first: 4)",
    "units(level: PROVINCE, first: 4)",
    'units(parent: "79", level: COMMUNE, first: 3)',
    "agencies(first: 4)",
    "regimes",
    'unit(code: "08", validOn: "2024-01-01")',
    'unit(code: "01")',
    'indicator(code: "UNEMP")',
    POINT,
    'aggregate(indicator: "RETAIL", unit: "79", period: "2026-Q1")',
    'observations(indicators: ["RETAIL", "UNEMP"], units: ["79", "01"], first: 5)',
]


def random_selection(rng: random.Random, type_: GraphQLObjectType, depth: int) -> str:
    fields = list(type_.fields.items())
    chosen = rng.sample(fields, k=min(len(fields), rng.randint(1, 7)))
    parts = []
    for name, field in chosen:
        target = get_named_type(field.type)
        if is_leaf_type(target):
            selection = name
        elif isinstance(target, GraphQLObjectType) and depth > 0:
            selection = f"{name} {{ {random_selection(rng, target, depth - 1)} }}"
        else:
            selection = "__typename"  # an interface or union, or too deep: its name only
        if rng.random() < 0.25:
            selection = f"{name}{rng.randint(1, 2)}: {selection}"  # an alias per field: no conflicts
        parts.append(selection)
    if rng.random() < 0.3:
        parts.append(f"... on {type_.name} {{ {parts[0]} }}")  # the same field again, merged
    return " ".join(parts)


async def test_random_selections_answer_as_graphql_core(run, all_indicators) -> None:
    rng = random.Random(20261128)
    query_type = schema._schema.query_type
    assert query_type is not None
    planned = 0
    for n in range(60):
        root = rng.choice(RANDOM_ROOTS)
        field = query_type.fields[root.split("(")[0]]
        target = get_named_type(field.type)
        assert isinstance(target, GraphQLObjectType)
        query = f"{{ {root} {{ {random_selection(rng, target, 3)} }} }}"
        grants = Grants(all_indicators, frozenset({"79"}) if n % 2 else None)
        expected = await run(query, None, plans=False, grants=grants)
        assert await run(query, None, plans=True, grants=grants) == expected, query
        plan, _ = await run.plan_only(query, None)
        planned += plan is not None
    assert planned >= 50, f"only {planned} of 60 documents had a plan"


NODE = (
    "query($id: ID!) { node(id: $id) { __typename id ... on Indicator { code nameEn field { code } } "
    "... on AdministrativeUnit { code level parent { code } } ... on Observation { value status } "
    "... on Agency { code } } }"
)
ENTITIES = (
    "query($r: [_Any!]!) { _entities(representations: $r) { __typename "
    "... on Indicator { code unitOfMeasure } ... on AdministrativeUnit { code nameEn } } }"
)


async def test_interfaces_and_unions_through_a_plan(run) -> None:
    # node(id:) returns the Node interface, _entities a union: the runtime type picks the fragment.
    ids = await run(
        f'{{ indicator(code: "UNEMP") {{ id }} unit(code: "79") {{ id }} {POINT} {{ id }} }}', None, plans=False
    )
    agency = await run("{ agencies(first: 1) { edges { node { id } } } }", None, plans=False)
    runs = [
        (NODE, {"id": ids["data"]["indicator"]["id"]}),
        (NODE, {"id": ids["data"]["unit"]["id"]}),
        (NODE, {"id": ids["data"]["observation"]["id"]}),
        (NODE, {"id": agency["data"]["agencies"]["edges"][0]["node"]["id"]}),
        (
            ENTITIES,
            {
                "r": [
                    {"__typename": "Indicator", "code": "RETAIL"},
                    {"__typename": "AdministrativeUnit", "id": ids["data"]["unit"]["id"]},
                ]
            },
        ),
    ]
    for query, variables in runs:
        expected = await run(query, variables, plans=False)
        assert "errors" not in expected and all(expected["data"].values()), expected
        plan, operation = await run.plan_only(query, variables)
        assert plan is not None
        assert response(await plan.run(operation)) == expected
        assert await run(query, variables, plans=True) == expected
    # An id of nothing, an entity that does not exist: each answered as graphql-core answers it.
    nothing = await run(NODE, {"id": "bm90aGluZzox"}, plans=False)
    assert [e["extensions"]["code"] for e in nothing["errors"]] == ["BAD_USER_INPUT"]
    assert await run(NODE, {"id": "bm90aGluZzox"}, plans=True) == nothing
    unknown = {"r": [{"__typename": "Indicator", "code": "NOPE"}]}
    assert await run(ENTITIES, unknown, plans=True) == await run(ENTITIES, unknown, plans=False)
