"""No restricted caller ever receives a canary, whatever it asks: queries and mutations generated from
schema.graphql, hand-picked queries, and subscriptions, over real HTTP and WebSocket against a real hub
with real tokens.

The hub serves a fresh demo database in which tests/canary/serving.py planted a RESTRICTED indicator of a
field no restricted caller is granted (CANARYSECRET: its code, texts and values) and an INTERNAL labour
indicator's values outside region 79 (LAB_PROBE for Ha Noi), stored by the owner and also reported through
the API (tests/canary/canaries.py says what they are). Five restricted callers (no token, a labour reader
limited to region 79, catalogue only, one ordinary indicator, a province reporter) then send operations
that hypothesis-graphql generates from the committed schema, with arguments drawn mostly from codes, ids
and cursors that exist, the canaries' among them. Every answer must be 200 or 400 with no INTERNAL error,
and hold no canary anywhere: data, error messages (other than the caller's own words echoed back),
extensions. Read-only callers' mutations must never succeed.

The test can fail: a control caller granted the canaries receives every one of them through the same
hand-picked queries, through queries generated the same way, and through the same subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import graphql
import httpx
import pytest
import websockets
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from tests.canary.canaries import (
    CANARY,
    CANARY_MARKERS,
    IN_REGION_VALUE,
    NATION_PROBE_VALUE,
    OPEN_PROBE,
    OPEN_PROBE_VALUE,
    OUT_OF_REGION,
    OUT_OF_REGION_MARKER,
    PROBE,
    Marker,
    find_leaks,
    request_texts,
)
from tests.canary.serving import CONTROL, RESTRICTED, REVIEWER, Caller, Hub

SCHEMA = graphql.build_schema(
    (Path(__file__).resolve().parents[2] / "schema.graphql").read_text(encoding="utf-8"),
    assume_valid_sdl=True,  # the federation directives (@link, @key) are not declared in the SDL
)
MARKERS = (*CANARY_MARKERS, OUT_OF_REGION_MARKER)  # none of the restricted callers may read either
QUERIES_PER_CALLER = 150
MUTATIONS_PER_READ_ONLY_CALLER = 20
MAX_ROOT_FIELDS = 3  # root fields per generated query, each under its own alias
QUIET_SECONDS = 1.0  # a subscriber that heard nothing for this long has heard everything

# Codes that exist (and a few that do not), so that generated arguments reach data rather than NOT_FOUND.
INDICATORS = [CANARY, PROBE, OPEN_PROBE, "RETAIL", "UNEMP", "UNEMPLOYED", "GDP_GROWTH", "FOREST_COVER", "POP_MONTHLY"]
UNITS = ["VN", "01", "79", "48", "01001", "79001", "74", "77"]
OTHER_CODES = ["BC_BO_QUY", "BC_KTXH_THANG", "BTC", "BNNMT", "VPCP", "UBND_79", "UBND_01", "environment", "labour"]
OTHER_STRINGS = ["", "SEX=F", "_T", "hub", "popdb", "canary", "xquorbiz", "lao dong", "submission.accepted", "NOPE"]
PERIODS = ["2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1", "2026-S2", "2026", "2026-M10", "2025-Q2", "2021-Q1", "2026-Q5"]
# The roots that serve values appear twice, so they are drawn twice as often.
DATA_ROOTS = ["indicator", "indicators", "node", "observations", "observation", "table", "series", "aggregate"]
DATA_ROOTS += ["valueHistory", "_entities", "submission", "submissions"]
QUERY_ROOTS = [*SCHEMA.query_type.fields, *(r for r in DATA_ROOTS if r in SCHEMA.query_type.fields)]


@dataclass(frozen=True)
class Known:
    """What the hub handed the control and the reviewer: what arguments are drawn from."""

    ids: tuple[str, ...]  # global ids of ordinary objects
    secret_ids: tuple[str, ...]  # global ids of the canary and of the values restricted callers may not read
    cursors: tuple[str, ...]  # cursors of a listing of the canaries' values
    submissions: tuple[int, ...]  # the accepted reports that carry canaries


CONTROL_QUERY = f"""{{
  canary: indicator(code: "{CANARY}") {{ id code nameVi nameEn definition unitOfMeasure sourceNote }}
  values: observations(indicators: ["{CANARY}", "{PROBE}"], units: ["VN", "01", "79", "01001"], first: 100) {{
    edges {{ cursor node {{ id value indicator {{ code }} unit {{ code }} period }} }}
  }}
  probe: indicator(code: "{PROBE}") {{ id }}
  unit(code: "01") {{ id }}
  regime(code: "BC_BO_QUY") {{ id }}
  forest: indicator(code: "FOREST_COVER") {{ id }}
}}"""


@pytest.fixture(scope="module")
async def known(canary_hub: Hub) -> Known:
    body = await canary_hub.gql(CONTROL.name, CONTROL_QUERY)
    assert "errors" not in body, body
    data = body["data"]
    edges = data["values"]["edges"]
    secret = [
        e["node"]["id"]
        for e in edges
        if e["node"]["indicator"]["code"] == CANARY or e["node"]["unit"]["code"] in OUT_OF_REGION
    ]
    ids = [data["probe"]["id"], data["unit"]["id"], data["regime"]["id"], data["forest"]["id"]]
    for submission in canary_hub.submissions:
        seen = await canary_hub.gql(
            REVIEWER.name, "query($s: Int!) { submission(submissionId: $s) { id } }", s=submission
        )
        ids.append(seen["data"]["submission"]["id"])
    return Known(
        ids=tuple(ids),
        secret_ids=(data["canary"]["id"], *secret),
        cursors=tuple(e["cursor"] for e in edges),
        submissions=tuple(canary_hub.submissions),
    )


def secret_id_markers(known: Known) -> tuple[Marker, ...]:
    return tuple(Marker("a secret value's or the canary's global id", i) for i in known.secret_ids)


def markers_for(known: Known) -> tuple[Marker, ...]:
    return (*MARKERS, *secret_id_markers(known))


# ---------------------------------------------------------------------------------------------------------------
# One answer, checked: what every test below asserts of every answer a restricted caller gets.


def check_answer(caller: Caller, document: str, status: int, text: str, markers: tuple[Marker, ...]) -> list[dict]:
    """Asserts the answer is 200 or 400, holds no canary and no INTERNAL error, and, for a read-only
    caller's mutation, that nothing was done. Returns its errors."""
    context = f"caller {caller.name} ({caller.scope or 'no token'}) sent:\n{document}\nand got {status}:\n{text[:3000]}"
    assert status in (200, 400), context
    leaks = find_leaks(text, request_texts(document), markers)
    assert not leaks, f"LEAK: {leaks}\n{context}"
    answer = json.loads(text)
    errors = answer.get("errors") or []
    assert "INTERNAL" not in {(e.get("extensions") or {}).get("code") for e in errors}, f"INTERNAL\n{context}"
    if document.lstrip().startswith("mutation") and caller.read_only:
        done = {k: v for k, v in (answer.get("data") or {}).items() if v is not None}
        assert not done, f"a read-only caller's mutation succeeded: {done}\n{context}"
    return errors


ASKED_FOR_THE_CANARY = '{ indicator(code: "CANARYSECRET") { code } }'
# The search itself: (an answer, what the caller had sent, whether that answer leaks).
SEARCHES = {
    "echoed_in_a_message": ('{"errors":[{"message":"you may not read CANARYSECRET"}]}', ASKED_FOR_THE_CANARY, False),
    "echoed_in_data": ('{"data":{"indicator":{"code":"CANARYSECRET"}}}', ASKED_FOR_THE_CANARY, True),
    "in_a_message_not_asked": ('{"errors":[{"message":"no indicator CANARYSECRET"}]}', "{ me { scopes } }", True),
    "in_extensions": ('{"data":{},"extensions":{"hint":"CANARYSECRET"}}', ASKED_FOR_THE_CANARY, True),
    "exponent_notation": ('{"data":{"v":9.87654321987E+5}}', "", True),
    "trailing_zero": ('{"data":{"v":987654.3219870}}', "", True),
    "thousands_separator": ('{"data":{"v":"987,654.321987"}}', "", True),
    "in_a_block": ('{"data":{"rows":"[{\\"unit\\":\\"01\\",\\"values\\":[135791.357913]}]"}}', "", True),
    "in_a_global_id": ('{"data":{"node":{"id":"SW5kaWNhdG9yOkNBTkFSWVNFQ1JFVA"}}}', "", True),  # Indicator:CANARYSECRET
    "in_a_name": ('{"data":{"nameEn":"A XQUORBIZ figure"}}', "", True),
    "nothing": ('{"data":{"v":987654.32}}', "", False),
}


@pytest.mark.parametrize(("answer", "sent", "leaks"), list(SEARCHES.values()), ids=list(SEARCHES))
def test_the_search_finds_a_canary_in_any_form(answer: str, sent: str, leaks: bool) -> None:
    assert bool(find_leaks(answer, request_texts(sent), MARKERS)) is leaks


# ---------------------------------------------------------------------------------------------------------------
# Hand-picked queries: the paths most likely to leak, for every restricted caller and for the control.


def hand_picked(known: Known) -> list[str]:
    canary_id, *value_ids = known.secret_ids
    report = known.submissions[0]
    return [
        f'{{ indicator(code: "{CANARY}") {{ code nameVi nameEn definition unitOfMeasure sourceNote }} }}',
        '{ a: indicators(search: "xquorbiz", first: 500) { edges { node { code nameEn } } } b: indicators(field: "environment", first: 500) { edges { cursor node { code } } } }',
        '{ indicators(search: "canary secret", first: 500) { edges { node { code nameEn } } } }',
        f'{{ node(id: "{canary_id}") {{ id ... on Indicator {{ code nameEn }} }} }}',
        "{ "
        + " ".join(
            f'n{i}: node(id: "{v}") {{ id ... on Observation {{ value unit {{ code }} }} }}'
            for i, v in enumerate(value_ids[:20])
        )
        + " }",
        f'{{ _entities(representations: [{{__typename: "Indicator", code: "{CANARY}"}}]) {{ ... on Indicator {{ code nameEn }} }} }}',
        f'{{ observations(indicators: ["{CANARY}", "{PROBE}", "{OPEN_PROBE}"], units: ["VN", "01", "79", "01001"], first: 500) {{ edges {{ cursor node {{ id value unit {{ code }} indicator {{ code }} }} }} }} }}',
        f'{{ observations(indicators: ["{PROBE}"], parent: "01", first: 500) {{ edges {{ node {{ value unit {{ code }} }} }} }} }}',
        f'{{ table(indicators: ["{CANARY}", "{PROBE}", "{OPEN_PROBE}"], parent: "VN", level: PROVINCE) {{ columns {{ code }} rows }} }}',
        f'{{ table(indicators: ["{PROBE}"], units: ["01", "01001", "79"], period: "2026-Q3") {{ rows }} }}',
        f'{{ a: series(indicator: "{PROBE}", units: ["01", "79"], from: "2026-Q2", to: "2027-Q1") {{ rows }} b: series(indicator: "{CANARY}", units: ["VN"], from: "2026-Q2", to: "2027-Q1") {{ rows }} }}',
        f'{{ a: aggregate(indicator: "{PROBE}", unit: "01", period: "2026-Q3") {{ value }} b: aggregate(indicator: "{CANARY}", unit: "VN", period: "2026-Q3") {{ value }} }}',
        f'{{ a: observation(indicator: "{PROBE}", unit: "01", period: "2026-Q3") {{ value }} b: observation(indicator: "{PROBE}", unit: "01001", period: "2026-Q3") {{ value }} }}',
        f'{{ a: valueHistory(indicator: "{PROBE}", unit: "01", period: "2026-Q3") {{ value }} b: valueHistory(indicator: "{CANARY}", unit: "VN", period: "2026-Q3") {{ value }} }}',
        f"{{ submission(submissionId: {report}) {{ values {{ unit indicator value }} problems {{ indicator message }} history {{ before after }} versions {{ values {{ indicator value }} }} }} }}",
        "{ submissions(first: 500) { edges { node { submissionId values { indicator value } } } } }",
        '{ regime(code: "BC_BO_QUY") { items { minValue maxValue indicator { code nameEn } } } regimes { items { indicator { code } } } }',
        '{ agency(code: "BNNMT") { indicators { code nameEn } } agencies(first: 500) { edges { node { indicators { code } } } } }',
        "{ auditTrail(first: 500) { edges { node { subject before after } } } }",
        "{ me { scopes indicators regions } sources { name indicators } }",
    ]


@pytest.mark.parametrize("caller", RESTRICTED, ids=[c.name for c in RESTRICTED])
async def test_hand_picked_paths_never_return_a_canary(canary_hub: Hub, known: Known, caller: Caller) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        for document in hand_picked(known):
            response = await http.post(
                f"{canary_hub.url}/graphql", json={"query": document}, headers=canary_hub.headers(caller.name)
            )
            check_answer(caller, document, response.status_code, response.text, markers_for(known))


async def test_the_control_receives_every_canary_and_the_region_reader_its_own_region(
    canary_hub: Hub, known: Known
) -> None:
    found: set[str] = set()
    async with httpx.AsyncClient(timeout=30) as http:
        for document in hand_picked(known):
            response = await http.post(
                f"{canary_hub.url}/graphql", json={"query": document}, headers=canary_hub.headers(CONTROL.name)
            )
            assert response.status_code == 200
            found.update(
                f.partition(" in ")[0] for f in find_leaks(response.text, request_texts(document), markers_for(known))
            )
    assert {m.name for m in markers_for(known)} <= found, (
        f"the control did not receive {found ^ {m.name for m in markers_for(known)}}"
    )
    # The region reader is not simply locked out: it reads LAB_PROBE for its region and for the nation.
    body = await canary_hub.gql(
        "labour_region_79",
        f'{{ observations(indicators: ["{PROBE}"], units: ["VN", "79"], first: 50) {{ edges {{ node {{ value unit {{ code }} }} }} }} }}',
    )
    values = {(e["node"]["unit"]["code"], str(e["node"]["value"])) for e in body["data"]["observations"]["edges"]}
    assert {("79", str(IN_REGION_VALUE)), ("VN", str(NATION_PROBE_VALUE))} <= values, body


# ---------------------------------------------------------------------------------------------------------------
# Generated operations: strategies for every scalar an argument can take, then the property.


def string_node(values: st.SearchStrategy[str]) -> st.SearchStrategy[graphql.ValueNode]:
    return values.map(nodes.String)


def object_node(fields: dict[str, str]) -> graphql.ObjectValueNode:
    return nodes.Object(
        [graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=nodes.String(v)) for k, v in fields.items()]
    )


def argument_strategies(known: Known) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Values for every input scalar of schema.graphql; the built-in ones drawn mostly from what exists."""
    ids = st.sampled_from(known.ids + known.secret_ids)
    others = st.sampled_from(OTHER_CODES + OTHER_STRINGS + list(known.ids + known.secret_ids + known.cursors))
    indicators, units = st.sampled_from(INDICATORS), st.sampled_from(UNITS)
    # Printable text (no NUL: the hub's limits refuse it before any resolver runs, which proves nothing here).
    text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)), max_size=16)
    ints = st.one_of(st.sampled_from([0, 1, 2, 50, 500, 501, -1, *known.submissions]), st.integers(-(2**31), 2**31 - 1))
    decimals = st.one_of(
        st.sampled_from(["0", "1", "-1", "12.5", "1e3", "9" * 40]),
        st.decimals(min_value=-(10**9), max_value=10**9, places=3).map(str),
    )
    days = st.one_of(
        st.sampled_from(["2025-06-30", "2025-07-01"]), st.dates(date(2000, 1, 1), date(2030, 12, 31)).map(str)
    )
    # Representations in the shapes of the two entities' keys only: malformed ones are answered INTERNAL
    # (test_malformed_entity_representations_are_refused below), which would end each run at its first one.
    representation = st.one_of(
        st.builds(lambda code: {"__typename": "Indicator", "code": code}, indicators),
        st.builds(lambda id_: {"__typename": "AdministrativeUnit", "id": id_}, ids),
        st.builds(
            lambda code, day: {"__typename": "AdministrativeUnit", "code": code, "validFrom": day},
            units,
            st.sampled_from(["2025-07-01", "2008-08-01", "1976-07-02"]),
        ),
    ).map(object_node)
    return {
        # A String argument cannot tell which kind of code it takes: indicators, where values are, weigh most.
        "String": string_node(st.one_of(indicators, indicators, units, others, text)),
        "ID": string_node(st.one_of(ids, ids, text)),
        "Int": ints.map(nodes.Int),
        "Period": string_node(st.sampled_from(PERIODS)),  # the canaries' quarters, others, and one invalid
        "Decimal": string_node(decimals),
        "Date": string_node(days),
        # Instants with and without an offset (the hub refuses those without), near the canaries' periods.
        "DateTime": string_node(
            st.one_of(
                st.sampled_from(["2026-12-20T23:59:59+07:00", "2027-01-01T00:00:00Z", "2026-12-20T12:00:00"]),
                st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC)).map(
                    lambda d: d.isoformat()
                ),
            )
        ),
        "_Any": representation,
    }


def input_scalars() -> set[str]:
    """The scalars some argument or input field of schema.graphql takes."""
    found: set[str] = set()

    def visit(type_: graphql.GraphQLInputType) -> None:
        named = graphql.get_named_type(type_)
        if isinstance(named, graphql.GraphQLScalarType):
            found.add(named.name)
        elif isinstance(named, graphql.GraphQLInputObjectType):
            for input_field in named.fields.values():
                visit(input_field.type)

    for type_ in SCHEMA.type_map.values():
        if isinstance(type_, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType):
            for type_field in type_.fields.values():
                for argument in type_field.args.values():
                    visit(argument.type)
    return found


def test_every_input_scalar_has_a_strategy() -> None:
    """A new input scalar in the schema fails here, instead of silently leaving its fields ungenerated."""
    drawn_by_hypothesis_graphql = {"Boolean", "Float"}
    missing = (
        input_scalars() - drawn_by_hypothesis_graphql - set(argument_strategies(Known(("x",), ("y",), ("z",), (1,))))
    )
    assert not missing, f"no strategy for the input scalars {missing}"


def operations(kind: str, known: Known) -> st.SearchStrategy[str]:
    """Documents of 1 to MAX_ROOT_FIELDS root fields, each generated alone then aliased (f0, f1, ...).

    Generating per root field keeps each one small and fast to draw, and lets the data roots be weighted;
    aliasing lets one document hold the same root twice with different arguments. A mutation document
    holds one mutation: read-only callers are refused each one at its root.
    """
    scalars = argument_strategies(known)
    if kind == "mutation":
        return st.sampled_from(list(SCHEMA.mutation_type.fields)).flatmap(
            lambda name: mutations(SCHEMA, fields=[name], custom_scalars=scalars)
        )
    per_root = {name: queries(SCHEMA, fields=[name], custom_scalars=scalars) for name in set(QUERY_ROOTS)}
    one = st.sampled_from(QUERY_ROOTS).flatmap(per_root.__getitem__)

    def aliased(documents: list[str]) -> str:
        # Each generated document is "{ root(...) { ... } }": keep its one selection, under an alias.
        return "{ " + " ".join(f"f{i}: {d.strip()[1:-1].strip()}" for i, d in enumerate(documents)) + " }"

    return st.lists(one, min_size=1, max_size=MAX_ROOT_FIELDS).map(aliased)


@dataclass
class Outcome:
    asked: int = 0
    named: int = 0  # operations that named the canary or a secret value's id
    statuses: Counter = field(default_factory=Counter)  # HTTP status -> answers
    codes: Counter = field(default_factory=Counter)  # error code -> errors
    seconds: float = 0.0


def check_generated(
    hub: Hub, caller: Caller, kind: str, known: Known, examples: int, *, shrink: bool = True
) -> Outcome:
    """Runs in a worker thread (sync HTTP), so that the hub keeps serving on the test's event loop."""
    outcome = Outcome()
    markers = markers_for(known)
    naming_a_canary = (CANARY_MARKERS[0], *secret_id_markers(known))  # its code, or an id
    started = time.monotonic()
    with httpx.Client(timeout=60) as http:
        # derandomize=True draws the same operations on every run; the seed, which takes precedence, is as
        # fixed but differs per caller and kind, so that the callers are not all sent one same list.
        @seed(zlib.crc32(f"{caller.name}/{kind}".encode()))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=tuple(Phase) if shrink else (Phase.explicit, Phase.generate),
        )
        @given(document=operations(kind, known))
        def no_canary_in_any_answer(document: str) -> None:
            response = http.post(f"{hub.url}/graphql", json={"query": document}, headers=hub.headers(caller.name))
            outcome.asked += 1
            outcome.named += any(m.found_in(request_texts(document)) for m in naming_a_canary)
            outcome.statuses[response.status_code] += 1
            errors = check_answer(caller, document, response.status_code, response.text, markers)
            outcome.codes.update(str((e.get("extensions") or {}).get("code")) for e in errors)

        no_canary_in_any_answer()
    outcome.seconds = time.monotonic() - started
    return outcome


CASES = [pytest.param(c, "query", id=f"{c.name}-queries") for c in RESTRICTED] + [
    pytest.param(c, "mutation", id=f"{c.name}-mutations") for c in RESTRICTED if c.read_only
]


@pytest.mark.parametrize(("caller", "kind"), CASES)
async def test_generated_operations_never_return_a_canary(
    canary_hub: Hub, known: Known, caller: Caller, kind: str
) -> None:
    examples = QUERIES_PER_CALLER if kind == "query" else MUTATIONS_PER_READ_ONLY_CALLER
    outcome = await asyncio.to_thread(check_generated, canary_hub, caller, kind, known, examples)
    print(
        f"\n{caller.name} {kind}: {outcome.asked} operations ({outcome.named} naming a canary) in"
        f" {outcome.seconds:.1f}s, statuses {dict(outcome.statuses)}, error codes {dict(outcome.codes)}"
    )
    assert outcome.asked >= examples * 0.9  # hypothesis ran (nearly) what was asked of it


async def test_generated_queries_do_reach_the_canaries_for_the_control(canary_hub: Hub, known: Known) -> None:
    """The same generation, run as the control, finds a canary: the generated queries can reach them."""
    with pytest.raises(AssertionError, match="LEAK"):
        await asyncio.to_thread(check_generated, canary_hub, CONTROL, "query", known, QUERIES_PER_CALLER, shrink=False)


# Found by this test (fixed in schema/entities.py): a federation representation not in the shape of an
# entity's key was answered INTERNAL (a masked TypeError, ValueError, asyncpg DataError or AttributeError in the _entities resolver)
# rather than BAD_USER_INPUT, for every caller, anonymous included. No canary leaked through it. In a list,
# the other representations' resolve_reference coroutines were then never awaited (RuntimeWarning), which
# under this suite's warnings-as-errors failed the test at teardown; the mixed list is tested below.
MALFORMED_REPRESENTATIONS = {
    "indicator_by_id": '{__typename: "Indicator", id: "SW5kaWNhdG9yOlJFVEFJTA"}',
    "indicator_without_key": '{__typename: "Indicator"}',
    "indicator_with_extra_field": '{__typename: "Indicator", code: "RETAIL", extra: 1}',
    "indicator_code_not_a_string": '{__typename: "Indicator", code: 5}',
    "not_an_entity": '{__typename: "Regime", code: "BC_BO_QUY"}',
    "unit_valid_from_not_a_date": '{__typename: "AdministrativeUnit", code: "01", validFrom: "bad"}',
    "not_an_object": '"x"',
}


@pytest.mark.parametrize(
    "representation", list(MALFORMED_REPRESENTATIONS.values()), ids=list(MALFORMED_REPRESENTATIONS)
)
async def test_malformed_entity_representations_are_refused(canary_hub: Hub, representation: str) -> None:
    query = f"{{ _entities(representations: [{representation}]) {{ __typename }} }}"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{canary_hub.url}/graphql", json={"query": query})
    assert response.status_code in (200, 400)
    codes = [(e.get("extensions") or {}).get("code") for e in response.json().get("errors") or []]
    assert codes == ["BAD_USER_INPUT"], response.text  # once found answered INTERNAL (schema/entities.py)


async def test_a_malformed_representation_beside_good_ones_spoils_only_its_own_index(canary_hub: Hub) -> None:
    query = (
        '{ _entities(representations: [{__typename: "Indicator", code: "OPEN_PROBE"}, "x",'
        ' {__typename: "AdministrativeUnit", code: "01", validFrom: "2025-07-01"}])'
        " { ... on Indicator { code } ... on AdministrativeUnit { code } } }"
    )
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{canary_hub.url}/graphql", json={"query": query})
    body = response.json()
    assert body["data"]["_entities"] == [{"code": OPEN_PROBE}, None, {"code": "01"}], body
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["_entities", 1], "BAD_USER_INPUT")]


# ---------------------------------------------------------------------------------------------------------------
# Subscriptions: the canaries arrive by a report accepted while everyone listens.


def changes(indicators: list[str], where: str) -> str:
    return (
        f"subscription {{ observationsChanged(indicators: {json.dumps(indicators)}, {where}) {{"
        " resync observations { id value period indicator { code nameEn } unit { code } } } }"
    )


EVENTS = "subscription { submissionEvents { resync type submissionId regime period agency status } }"
CONTROL_SUBSCRIPTION = changes([CANARY, PROBE], 'units: ["VN", "01", "79"]')
# What every restricted caller subscribes to: the canaries by name (refused, or empty), and report events.
EVERYONE = [
    changes([CANARY], 'units: ["VN", "01", "79"]'),
    changes([CANARY, PROBE], 'parent: "VN", level: PROVINCE'),
    changes([PROBE], 'units: ["01", "01001"]'),
    EVENTS,
]
# And what some may hear of the same report, with what it must hold: their connections are live.
OWN = {
    "anonymous": (changes([OPEN_PROBE], 'units: ["VN"]'), str(OPEN_PROBE_VALUE)),
    "labour_region_79": (changes([PROBE], 'parent: "VN", level: PROVINCE'), str(IN_REGION_VALUE)),
}


@contextlib.asynccontextmanager
async def connected(hub: Hub, caller: str) -> AsyncIterator[websockets.ClientConnection]:
    """A graphql-transport-ws connection, initialised with the caller's token (none for anonymous)."""
    url = hub.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": hub.headers(caller)}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["type"] == "connection_ack", ack
        yield ws


async def subscribe(ws: websockets.ClientConnection, documents: list[str]) -> dict[str, str]:
    """Subscribes to each document; returns them by operation id."""
    ids = {}
    for document in documents:
        op = uuid.uuid4().hex
        ids[op] = document
        await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {"query": document}}))
    return ids


async def heard(ws: websockets.ClientConnection, quiet: float, first_within: float | None = None) -> list[dict]:
    """Every message until none came for ``quiet`` seconds (the first may take up to ``first_within``)."""
    messages: list[dict] = []
    with contextlib.suppress(TimeoutError):
        while True:
            wait = first_within if first_within and not messages else quiet
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), wait)))
    return messages


def as_answer(message: dict) -> str:
    """A message as a GraphQL answer: ``next`` carries one, ``error`` a list of errors."""
    if message.get("type") == "error":
        return json.dumps({"errors": message.get("payload")}, ensure_ascii=False)
    return json.dumps(message.get("payload") or {}, ensure_ascii=False)


async def test_subscribers_hear_no_canary_of_an_accepted_report(canary_hub: Hub, known: Known) -> None:
    markers = markers_for(known)
    async with contextlib.AsyncExitStack() as stack:
        control = await stack.enter_async_context(connected(canary_hub, CONTROL.name))
        await subscribe(control, [CONTROL_SUBSCRIPTION])
        listeners = {}
        for caller in RESTRICTED:
            ws = await stack.enter_async_context(connected(canary_hub, caller.name))
            own = [OWN[caller.name][0]] if caller.name in OWN else []
            listeners[caller] = (ws, await subscribe(ws, EVERYONE + own))
        # Refusals come at once; they are checked with the rest below. Then the subscriptions are registered.
        early = {caller: await heard(ws, 0.3) for caller, (ws, _) in listeners.items()}

        await canary_hub.report_canaries("2027-Q1")

        # The control hears the canaries: the event carried them, and the search finds them.
        found = {
            f.partition(" in ")[0]
            for message in await heard(control, QUIET_SECONDS, first_within=15)
            for f in find_leaks(as_answer(message), request_texts(CONTROL_SUBSCRIPTION), markers)
        }
        assert {CANARY_MARKERS[2].name, OUT_OF_REGION_MARKER.name} <= found, found

        for caller, (ws, documents) in listeners.items():
            messages = early[caller] + await heard(ws, 0.2)
            for message in messages:
                document = documents.get(message.get("id"), "")
                check_answer(caller, document, 200, as_answer(message), markers)
            if caller.name in OWN:
                document, expected = OWN[caller.name]
                live = [m for m in messages if documents.get(m.get("id")) == document and m.get("type") == "next"]
                assert any(expected in json.dumps(m) for m in live), (
                    f"{caller.name} heard nothing of its own: {messages}"
                )
