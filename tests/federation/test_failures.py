"""A source that hangs, resets, errs, talks garbage or floods: its values are null, the rest of the
response stands, the request ends within its deadline, and ``sources`` says what happened."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from tests.federation.conftest import POPULATION_SQL, block, gql, sources_toml

TABLE = '{ table(indicators: ["POP_MONTHLY", "INTL_VISITORS", "RETAIL"], units: ["79"], period: "2026-M10") { rows } }'
SOURCES = (
    "{ sources { name kind state lastErrorAt lastErrorKind latencyP50Ms latencyP95Ms calls failures staleServed } }"
)
INTERNALS = ("127.0.0.1", "exploded", "db7", "http", "json", "500", "Traceback", "SQL")


def assert_partial(body: dict, source: str) -> list:
    """The source's column is null, the others are there, and one error names the source only."""
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    assert error["path"] == ["table"]
    assert f"source {source} is unavailable" in error["message"]
    assert not [word for word in INTERNALS if word in error["message"]], error["message"]
    (row,) = block(body["data"]["table"]["rows"])
    return row["values"]


async def source_report(hub: str, name: str) -> dict:
    body = await gql(hub, SOURCES)
    return next(s for s in body["data"]["sources"] if s["name"] == name)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("hang", "TIMEOUT"),
        ("500", "BAD_STATUS"),
        ("malformed-json", "MALFORMED"),
        ("malformed-value", "MALFORMED"),
        ("huge", "TOO_LARGE"),
    ],
)
async def test_a_failing_http_source_leaves_a_partial_result(
    start_hub, population, arrivals, stats, mode: str, kind: str
) -> None:
    arrivals.mode = mode
    hub = await start_hub(sources_toml(population, arrivals, stats))
    started = time.monotonic()
    body = await gql(hub, TABLE)
    elapsed = time.monotonic() - started
    values = assert_partial(body, "tourism")
    assert values[0] == Decimal("9880001.5") and values[1] is None and values[2] is not None
    assert elapsed < 5.0  # the request's deadline (execution_timeout)
    report = await source_report(hub, "tourism")
    assert (report["state"], report["lastErrorKind"]) == ("DEGRADED", kind)
    assert report["lastErrorAt"] is not None and report["failures"] >= 1
    if mode == "hang":
        assert len(arrivals.calls) == 2 and elapsed >= 2.0  # timeout 1 s, retried once
        assert report["latencyP50Ms"] >= 990 and report["latencyP95Ms"] >= report["latencyP50Ms"]
    elif mode == "500":
        assert len(arrivals.calls) == 2  # a 5xx may pass: retried once
    else:
        assert len(arrivals.calls) == 1  # garbage is not asked for twice
    if mode == "huge":
        assert arrivals.bytes_sent < 20_000_000  # the hub hung up long before 100 MB
    popdb = await source_report(hub, "popdb")
    assert popdb["state"] == "OK" and popdb["latencyP50Ms"] is not None


async def test_a_source_that_resets_the_connection(start_hub, population, arrivals, stats, reset_server) -> None:
    arrivals.url = reset_server.url
    hub = await start_hub(sources_toml(population, arrivals, stats))
    values = assert_partial(await gql(hub, TABLE), "tourism")
    assert values[1] is None and values[0] is not None
    assert reset_server.connections == 2  # a reset may pass: retried once
    assert (await source_report(hub, "tourism"))["lastErrorKind"] == "CONNECTION"


async def test_a_hanging_source_cannot_outlive_the_request_deadline(start_hub, population, arrivals, stats) -> None:
    # The source would wait 30 s; the request may run 3 s: the hub answers before its deadline.
    arrivals.mode = "hang"
    hub = await start_hub(sources_toml(population, arrivals, stats, tourism={"timeout": 30}), execution_timeout=3.0)
    started = time.monotonic()
    body = await gql(hub, TABLE)
    assert time.monotonic() - started < 3.0
    assert assert_partial(body, "tourism")[2] is not None


async def test_a_point_lookup_on_a_failing_source_is_null_with_the_error_at_its_path(
    start_hub, population, arrivals, stats
) -> None:
    arrivals.mode = "500"
    hub = await start_hub(sources_toml(population, arrivals, stats))
    body = await gql(
        hub,
        '{ a: observation(indicator: "INTL_VISITORS", unit: "79", period: "2026-M10") { value } '
        'b: observation(indicator: "POP_MONTHLY", unit: "79", period: "2026-M10") { value } }',
    )
    assert body["data"] == {"a": None, "b": {"value": Decimal("9880001.5")}}
    (error,) = body["errors"]
    assert (error["path"], error["extensions"]["code"]) == (["a"], "SOURCE_UNAVAILABLE")
    assert len(arrivals.calls) == 2  # asked and retried once, and not again within the request


async def test_postgres_sources_time_out_and_fail_to_connect(start_hub, population, arrivals, stats) -> None:
    hung = sources_toml(population, arrivals, stats, population_sql=POPULATION_SQL + " CROSS JOIN pg_sleep(10)")
    hub = await start_hub(hung)
    started = time.monotonic()
    values = assert_partial(await gql(hub, TABLE), "popdb")
    assert values[0] is None and values[1] == 512345 and time.monotonic() - started < 5.0
    assert (await source_report(hub, "popdb"))["lastErrorKind"] == "TIMEOUT"

    population_url = population.url
    population.url = "postgresql://nobody@127.0.0.1:9/none"  # nothing listens on the discard port
    try:
        down = await start_hub(sources_toml(population, arrivals, stats))
    finally:
        population.url = population_url
    values = assert_partial(await gql(down, TABLE), "popdb")
    assert values[0] is None and values[1] == 512345
    assert (await source_report(down, "popdb"))["lastErrorKind"] == "CONNECTION"


async def test_a_graphql_answer_with_errors_is_refused(start_hub, population, arrivals, stats) -> None:
    stats_url = stats.url
    toml = sources_toml(population, arrivals, stats).replace("figures(indicators:", "nosuchfield(indicators:")
    hub = await start_hub(toml)
    body = await gql(hub, '{ table(indicators: ["FDI_REG", "RETAIL"], units: ["VN"], period: "2026-M10") { rows } }')
    assert assert_partial(body, "statsbank")[0] is None
    assert (await source_report(hub, "statsbank"))["lastErrorKind"] == "UPSTREAM_ERROR"
    assert stats.url == stats_url


async def test_the_circuit_opens_after_repeated_failures_and_recovers(start_hub, population, arrivals, stats) -> None:
    arrivals.mode = "500"
    policy = {"retries": 0, "breaker_failures": 2, "breaker_cooldown": 1.0}
    hub = await start_hub(sources_toml(population, arrivals, stats, tourism=policy))
    for _ in range(2):
        assert_partial(await gql(hub, TABLE), "tourism")
    assert len(arrivals.calls) == 2
    assert (await source_report(hub, "tourism"))["state"] == "CIRCUIT_OPEN"
    # Open: the hub answers at once without calling.
    started = time.monotonic()
    body = await gql(hub, TABLE)
    assert time.monotonic() - started < 0.5
    assert "not being called" in body["errors"][0]["message"]
    assert len(arrivals.calls) == 2
    # After the cool-down one probe goes through; it fails, so the circuit opens again.
    await asyncio.sleep(1.1)
    assert_partial(await gql(hub, TABLE), "tourism")
    assert len(arrivals.calls) == 3
    assert (await source_report(hub, "tourism"))["state"] == "CIRCUIT_OPEN"
    # The source is back: the next probe succeeds and the circuit closes.
    arrivals.mode = "ok"
    await asyncio.sleep(1.1)
    body = await gql(hub, TABLE)
    assert "errors" not in body, body
    assert block(body["data"]["table"]["rows"])[0]["values"][1] == 512345
    assert (await source_report(hub, "tourism"))["state"] == "OK"
    assert len(arrivals.calls) == 4


async def test_cached_values_are_served_stale_with_their_age_while_the_source_is_down(
    start_hub, population, arrivals, stats
) -> None:
    hub = await start_hub(sources_toml(population, arrivals, stats, tourism={"cache_ttl": 1.0}))
    query = '{ observation(indicator: "INTL_VISITORS", unit: "79", period: "2026-M10") { value provenance { source stale ageSeconds } } }'
    fresh = await gql(hub, query)
    assert fresh["data"]["observation"] == {
        "value": 512345,
        "provenance": {"source": "tourism", "stale": False, "ageSeconds": None},
    }
    await gql(hub, query)
    assert len(arrivals.calls) == 1  # within the TTL: from the cache
    arrivals.mode = "500"
    await asyncio.sleep(1.2)
    stale = await gql(hub, query)
    assert "errors" not in stale
    assert stale["data"]["observation"] == {
        "value": 512345,
        "provenance": {"source": "tourism", "stale": True, "ageSeconds": 1},
    }
    assert len(arrivals.calls) == 3  # asked again (and retried) before falling back on the cache
    table = await gql(hub, '{ table(indicators: ["INTL_VISITORS"], units: ["79"], period: "2026-M10") { rows } }')
    assert block(table["data"]["table"]["rows"])[0]["provenance"] == ["source:tourism;stale;age=1"]
    report = await source_report(hub, "tourism")
    assert report["state"] == "DEGRADED" and report["staleServed"] >= 2


async def test_a_post_source_is_retried_only_when_declared_idempotent(start_hub, population, arrivals, stats) -> None:
    post = {"url": arrivals.url + "/api/batch", "method": "POST", "retries": 2}
    toml = sources_toml(population, arrivals, stats, tourism=post).replace(
        'value = "arrivals"', 'value = "arrivals"\nindicator = "indicator"'
    )
    hub = await start_hub(toml)
    body = await gql(hub, TABLE)
    assert "errors" not in body, body
    assert block(body["data"]["table"]["rows"])[0]["values"][1] == 512345
    assert arrivals.calls == [{"indicators": ["arrivals"], "units": ["79"], "periods": ["2026-M10"]}]
    arrivals.mode = "500"
    assert_partial(await gql(hub, TABLE), "tourism")
    assert len(arrivals.calls) == 2  # a POST may not be idempotent: asked once, never again
    idempotent = await start_hub(toml.replace('method = "POST"', 'method = "POST"\nidempotent = true'))
    assert_partial(await gql(idempotent, TABLE), "tourism")
    assert len(arrivals.calls) == 5  # declared idempotent: the first attempt and two retries
