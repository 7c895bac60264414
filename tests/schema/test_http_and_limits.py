"""GraphQL over HTTP conformance and the document limits, against a real server."""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
import time

import asyncpg
import httpx
import pytest

from nrhub.auth.principal import Grants, Principal
from nrhub.config.settings import Settings
from nrhub.resolvers.loaders import Loaders
from nrhub.resolvers.scope import resolve_scope
from nrhub.schema.build import print_schema
from nrhub.schema.context import Context
from nrhub.schema.execution import Executor
from nrhub.schema.limits import Limits
from nrhub.schema.time_limit import Deadlines
from tests.conftest import ROOT

SETTINGS = Settings()
QUERY = '{ indicator(code: "RETAIL") { code } }'


async def post(url: str, payload: object = None, *, content: bytes | None = None, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        if content is not None:
            return await client.post(f"{url}/graphql", content=content, headers=headers)
        return await client.post(f"{url}/graphql", json=payload, headers=headers)


async def test_default_media_type_and_json_on_request(hub_url: str) -> None:
    default = await post(hub_url, {"query": QUERY})
    assert default.status_code == 200
    assert default.headers["content-type"].startswith("application/graphql-response+json")
    plain = await post(hub_url, {"query": QUERY}, accept="application/json")
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json() == {"data": {"indicator": {"code": "RETAIL"}}}


async def test_a_request_id_is_the_callers_when_plain_and_fresh_otherwise(hub_url: str) -> None:
    # The caller's id ties its logs to the hub's (and to audit entries); header text that is not a
    # short plain token is replaced, never echoed or stored.
    kept = await post(hub_url, {"query": QUERY}, **{"x-request-id": "batch-7.retry:2"})
    assert kept.headers["x-request-id"] == "batch-7.retry:2"
    ids = set()
    for supplied in ("x" * 65, "two words", "line\tbreak", ""):
        replaced = await post(hub_url, {"query": QUERY}, **{"x-request-id": supplied})
        assert replaced.status_code == 200
        ids.add(replaced.headers["x-request-id"])
    assert len(ids) == 4 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


async def test_unsupported_accept_is_406_and_non_json_body_415(hub_url: str) -> None:
    assert (await post(hub_url, {"query": QUERY}, accept="text/csv")).status_code == 406
    refused = await post(hub_url, content=QUERY.encode(), **{"content-type": "text/plain"})
    assert refused.status_code == 415


async def test_get_runs_queries_but_not_mutations(hub_url: str) -> None:
    async with httpx.AsyncClient() as client:
        ok = await client.get(f"{hub_url}/graphql", params={"query": QUERY})
        mutation = await client.get(f"{hub_url}/graphql", params={"query": "mutation { x }"})
    assert ok.status_code == 200 and ok.json()["data"]["indicator"]["code"] == "RETAIL"
    assert mutation.status_code == 405 and mutation.headers["allow"] == "POST"


async def test_two_megabyte_body_is_413(hub_url: str) -> None:
    big = b'{"query": "{ __typename }", "pad": "' + b"x" * 2_000_000 + b'"}'
    response = await post(hub_url, content=big, **{"content-type": "application/json"})
    assert response.status_code == 413


async def test_a_caller_leaving_mid_body_is_no_error(hub_url: str, caplog: pytest.LogCaptureFixture) -> None:
    host, port = hub_url.removeprefix("http://").split(":")
    head = f"POST /graphql HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    for _ in range(3):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(head.encode() + b'{"query": "{ __typ')
        await writer.drain()
        await asyncio.sleep(0.05)  # the hub has read the start of the body and waits for the rest
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.2)
    assert (await post(hub_url, {"query": QUERY})).status_code == 200  # and the hub serves on
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_malformed_json_and_lone_surrogate_are_bad_user_input(hub_url: str) -> None:
    for body in (b"{not json", b'{"query": "{ indicators(search: \\"\\ud800\\") { edges { cursor } } }"}'):
        response = await post(hub_url, content=body, **{"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def nested(depth: int) -> str:
    inner = "code"
    for _ in range(depth):
        inner = f"parent {{ {inner} }}"
    return f'{{ unit(code: "79001") {{ {inner} }} }}'


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (nested(SETTINGS.max_depth), "QUERY_TOO_COMPLEX"),
        ("{ " + " ".join(f"a{i}: __typename" for i in range(SETTINGS.max_aliases + 1)) + " }", "QUERY_TOO_COMPLEX"),
        # 10 aliases in a fragment spread 4 times: 40 aliases counted through the fragment.
        (
            "fragment F on Query { " + " ".join(f"b{i}: __typename" for i in range(10)) + " } { ...F ...F ...F ...F }",
            "QUERY_TOO_COMPLEX",
        ),
        ("{ " + " ".join(["__typename"] * SETTINGS.max_tokens) + " }", "QUERY_TOO_COMPLEX"),
        ("{ __typename " + "@include(if: true) " * (SETTINGS.max_directives + 1) + "}", "QUERY_TOO_COMPLEX"),
        (
            '{ indicators(search: "' + "x" * (SETTINGS.max_string_length + 1) + '") { edges { cursor } } }',
            "BAD_USER_INPUT",
        ),
    ],
)
async def test_limits_reject_documents_before_any_resolver_runs(database_url: str, document: str, code: str) -> None:
    """Run through the executor with a pool that logs every statement: a rejected document runs none."""
    statements: list[str] = []
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, init=lambda c: _log_queries(c, statements))
    try:
        result = await execute(pool, document)
    finally:
        await pool.close()
    assert result.errors and (result.errors[0].extensions or {}).get("code") == code, result.errors
    assert result.data is None
    assert [s for s in statements if "indicator" in s or "admin_unit" in s] == []


async def _log_queries(conn: asyncpg.Connection, sink: list[str]) -> None:
    conn.add_query_logger(lambda record: sink.append(record.query))


def make_executor(*, plans: bool = True, timeout: float = 10) -> Executor:
    return Executor(
        Limits(SETTINGS.max_depth, SETTINGS.max_aliases, SETTINGS.max_directives, SETTINGS.max_string_length),
        max_tokens=SETTINGS.max_tokens,
        timeout=timeout,
        suggestions=False,
        plans=plans,
    )


async def execute(
    pool: asyncpg.Pool,
    document: str,
    grants: Grants | None = None,
    *,
    plans: bool = True,
    executor: Executor | None = None,
):
    executor = executor or make_executor(plans=plans)
    prepared = executor.prepare(document, None, introspection=False)
    if prepared.errors:
        from graphql import ExecutionResult

        return ExecutionResult(None, prepared.errors)
    all_codes = frozenset(await pool.fetchval("SELECT array_agg(code) FROM indicator"))
    grants = grants or Grants(all_codes)
    scope = await resolve_scope(pool, grants)
    import datetime

    today = datetime.date.today()
    context = Context(
        db=pool,
        principal=Principal(grants=grants),
        scope=scope,
        loaders=Loaders(pool, scope, today),
        max_page_size=SETTINGS.max_page_size,
        today=today,
        request_id="test",
    )
    return await executor.run(prepared, None, None, context)


NESTED = """{ agencies(first: %d, kind: PROVINCIAL_COMMITTEE) { edges { node { code unit { code parent { code }
  predecessors { relation unit { code } } children { code agency { code } } } indicators { code } } } } }"""


@pytest.mark.parametrize("plans", [True, False], ids=["compiled plan", "graphql-core"])
async def test_statement_count_does_not_grow_with_the_number_of_objects(database_url: str, plans: bool) -> None:
    counts = []
    for size in (3, 30):
        statements: list[str] = []
        pool = await asyncpg.create_pool(
            database_url, min_size=1, max_size=4, init=lambda c, s=statements: _log_queries(c, s)
        )
        try:
            result = await execute(pool, NESTED % size, plans=plans)
        finally:
            await pool.close()
        assert result.errors is None, result.errors
        assert len(result.data["agencies"]["edges"]) == size
        # Only the hub's own data statements: not asyncpg's type introspection, resets or setup.
        noise = ("pg_catalog", "pg_type", "set_config", "pg_advisory_unlock_all", "array_agg(code) FROM indicator")
        counts.append(len([s for s in statements if not any(n in s for n in noise)]))
    # agencies; their indicators; units; parents; lineage; lineage units; children; children's agencies
    assert counts == [8, 8]


async def test_a_rate_aggregate_costs_one_statement_beyond_its_lookups(database_url: str) -> None:
    statements: list[str] = []
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, init=lambda c: _log_queries(c, statements))
    try:
        result = await execute(pool, '{ aggregate(indicator: "ONLINE_PS", unit: "79", period: "2025-Q4") { value } }')
    finally:
        await pool.close()
    assert result.errors is None and result.data["aggregate"]["value"] is not None
    noise = ("pg_catalog", "pg_type", "set_config", "pg_advisory_unlock_all", "array_agg(code) FROM indicator")
    hub = [s for s in statements if not any(n in s for n in noise)]
    # The indicator (its components' sources with it), the unit, and the aggregation itself.
    assert len(hub) == 3, hub


@pytest.mark.parametrize("plans", [True, False], ids=["compiled plan", "graphql-core"])
async def test_a_query_leaves_nothing_for_the_cyclic_collector(database_url: str, plans: bool) -> None:
    # Each request's executor, context and loaders are freed when it ends: garbage in reference
    # cycles would make the cyclic collector run every few dozen requests (a point lookup's p99).
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    executor = make_executor(plans=plans)  # one per app, as the hub's: its caches outlive requests
    documents = [NESTED % 3, '{ observation(indicator: "RETAIL", unit: "79", period: "2026-M03") { value } }']
    try:
        for document in documents:  # warm: caches filled, statements prepared
            assert (await execute(pool, document, executor=executor)).errors is None
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds unreachable is kept in gc.garbage
        try:
            for document in documents:
                assert (await execute(pool, document, executor=executor)).errors is None
            gc.collect()
            left = [type(o).__qualname__ for o in _not_expired_statements(gc.garbage)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        await pool.close()
    assert left == []


def _not_expired_statements(garbage: list[object]) -> list[object]:
    """The garbage but for asyncpg's expired statement-cache entries and what only they hold.

    An entry of any connection in this process that goes unused for 300 s expires through a timer,
    leaving an entry <-> timer cycle (with the timer's bound method, arguments and context). The
    suite's long-lived connections have such entries expire at any moment, a request's window
    included; they are not the request's garbage."""
    expired = [o for o in garbage if type(o).__qualname__ == "_StatementCacheEntry"]
    in_garbage = {id(o) for o in garbage}
    reached: set[int] = set()
    while expired:
        obj = expired.pop()
        if id(obj) in reached:
            continue
        reached.add(id(obj))
        expired.extend(r for r in gc.get_referents(obj) if id(r) in in_garbage)
    return [o for o in garbage if id(o) not in reached]


@pytest.mark.parametrize("plans", [True, False], ids=["compiled plan", "graphql-core"])
async def test_a_query_past_the_time_limit_is_stopped_and_answered(database_url: str, plans: bool) -> None:
    # Another session holds the values' table: the lookup waits in PostgreSQL until the limit ends it.
    point = '{ observation(indicator: "RETAIL", unit: "79", period: "2026-M03") { value } }'
    executor = make_executor(plans=plans, timeout=0.4)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    holder = await asyncpg.connect(database_url)
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("LOCK TABLE observation_current IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        stopped = await execute(pool, point, executor=executor)
        elapsed = time.monotonic() - started
        await held.rollback()
        after = await execute(pool, point, executor=executor)  # the pool's one connection serves again
    finally:
        await holder.close()
        await pool.close()
    assert stopped.data is None and stopped.errors is not None
    assert (stopped.errors[0].extensions or {}).get("code") == "QUERY_TOO_COMPLEX"
    assert stopped.errors[0].message == "the query ran longer than the 0.4 s limit"
    assert 0.4 <= elapsed < 2.0
    assert after.errors is None and after.data["observation"]["value"] is not None


async def test_the_time_limit_leaves_other_cancellations_and_quick_runs_alone() -> None:
    async with Deadlines(0.2).limit():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # it left the watch: nothing cancels the task later

    async def cancelled_from_outside() -> None:
        async with Deadlines(5).limit():
            await asyncio.sleep(5)

    task = asyncio.create_task(cancelled_from_outside())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):  # not turned into the limit's TimeoutError
        await task

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with Deadlines(0.1).limit():
            await asyncio.sleep(5)
    assert 0.1 <= time.monotonic() - started < 1.0
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_each_overdue_run_is_stopped_at_its_deadline_and_no_other() -> None:
    deadlines = Deadlines(0.2)

    async def run(seconds: float) -> tuple[str, float]:
        started = time.monotonic()
        try:
            async with deadlines.limit():
                await asyncio.sleep(seconds)
        except TimeoutError:
            return "stopped", time.monotonic() - started
        return "done", time.monotonic() - started

    tasks = []
    for i in range(40):
        tasks.append(asyncio.create_task(run(0.05 if i % 2 else 5.0)))
        await asyncio.sleep(0.005)
    results = await asyncio.gather(*tasks)
    assert all(outcome == "done" for outcome, _ in results[1::2])
    stopped = [took for outcome, took in results[0::2] if outcome == "stopped"]
    assert len(stopped) == 20
    assert all(0.2 <= took < 0.6 for took in stopped), stopped


async def test_introspection_is_off_by_default(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        result = await execute(pool, "{ __schema { types { name } } }")
    finally:
        await pool.close()
    assert result.errors and "introspection" in result.errors[0].message.lower()


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == print_schema(), (
        "schema.graphql drifted: regenerate it with `nrhub schema print > schema.graphql`"
    )


def test_nrhub_schema_print_writes_the_committed_schema() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "nrhub.cli", "schema", "print"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == (ROOT / "schema.graphql").read_text(encoding="utf-8")
