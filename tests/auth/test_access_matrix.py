"""Each agency reads exactly the indicators its token grants, on every read path, over the whole
demo catalogue; and a region grant keeps sub-national values inside that region.

For each client every path is asked about every indicator code. The codes that appear anywhere in
the answers (as an Indicator, with or without values) must be exactly the grant; every code asked
for by name and not granted must be a FORBIDDEN error at the path that named it, with the rest of
the response intact.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.auth.conftest import Registered

INDICATOR = "fragment I on Indicator { __typename code numerator { __typename code } denominator { __typename code } }"
CONTROL = 'ctl: unit(code: "VN") { code }'  # a sibling that must survive any denial
BATCH = 25  # aliases per document, under the hub's limit of 30
# A few periods per series: monthly and quarterly ranges cross the 2025-07-01 reform.
SERIES_RANGE = {"M": ("2025-M06", "2025-M08"), "Q": ("2025-Q2", "2025-Q3"), "A": ("2024", "2025")}
LATEST = {"M": "2026-M10", "Q": "2026-Q3", "A": "2025"}
DENIED = re.compile(r"you may not read indicator (\S+)$")
# A unit named by code outside the reader's regions is refused at its field, the other units answered.
UNIT_DENIED = re.compile(r"you may not read values for unit (\S+)$")
# This hub configures no federated sources: a granted federated indicator's values are unavailable
# (tests/federation covers them); a denied one must still be FORBIDDEN before any source is asked.
UNFEDERATED = re.compile(r"^source \S+ is |not supported for federated indicators")


@dataclass(frozen=True)
class Grantee:
    name: str
    scope: str
    agency: str
    region: str | None = None


GRANTEES = {
    "one_field": Grantee("one_field", "data:read field:labour", "BNV"),
    "two_indicators": Grantee("two_indicators", "data:read indicator:RETAIL indicator:UNEMP", "BTC"),
    "province": Grantee("province", "data:read field:growth field:public_finance region:79", "UBND_79", "79"),
    "command_centre": Grantee("command_centre", "", "VPCP"),  # scope filled in from indicator_field
    "catalogue_only": Grantee("catalogue_only", "catalog:read", "BNV"),
    # field: without data:read reads nothing either: values (and the indicators) need data:read.
    "field_without_data_read": Grantee("field_without_data_read", "catalog:read field:labour", "BNV"),
}


@dataclass(frozen=True)
class Catalogue:
    codes: list[str]
    periodicity: dict[str, str]
    fields: list[str]
    node_ids: dict[str, str]
    federated: frozenset[str] = frozenset()


@dataclass
class Observed:
    """What the answers showed: indicator codes, units with values, and refusals by path."""

    codes: set[str] = field(default_factory=set)
    value_units: set[str] = field(default_factory=set)
    forbidden: dict[tuple, set[str]] = field(default_factory=dict)
    units_forbidden: dict[tuple, set[str]] = field(default_factory=dict)


def indicator_codes(value: Any) -> Iterator[str]:
    """Every code of an Indicator object anywhere in a GraphQL answer."""
    if isinstance(value, dict):
        if value.get("__typename") == "Indicator":
            yield value["code"]
        for item in value.values():
            yield from indicator_codes(item)
    elif isinstance(value, list):
        for item in value:
            yield from indicator_codes(item)


def block(value: str | list) -> list:
    return value if isinstance(value, list) else json.loads(value)


def chunks(items: list[str], size: int = BATCH) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def codes_literal(codes: list[str]) -> str:
    return json.dumps(codes)


class Reader:
    """One client's session against the real hub: every answer is recorded in ``seen``."""

    def __init__(self, http: httpx.AsyncClient, hub: str, token: str) -> None:
        self.http, self.hub, self.token = http, hub, token
        self.seen = Observed()
        self._gate = asyncio.Semaphore(8)

    async def ask(self, query: str, variables: dict | None = None) -> dict:
        async with self._gate:
            response = await self.http.post(
                f"{self.hub}/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("data") is not None, body
        self.seen.codes.update(indicator_codes(body["data"]))
        for error in body.get("errors", []):
            if UNFEDERATED.search(error["message"]):
                continue
            assert error["extensions"]["code"] == "FORBIDDEN", error
            unit = UNIT_DENIED.search(error["message"])
            if unit:
                self.seen.units_forbidden.setdefault(tuple(error["path"]), set()).add(unit.group(1))
                continue
            match = DENIED.search(error["message"])
            assert match, error
            self.seen.forbidden.setdefault(tuple(error["path"]), set()).add(match.group(1))
        if "ctl" in body["data"]:
            assert body["data"]["ctl"] == {"code": "VN"}
        return body

    def forbidden_at(self, *path: str | int) -> set[str]:
        return self.seen.forbidden.get(tuple(path), set())


@pytest.fixture(scope="module")
async def catalogue(pool, register, token_for, real_hub: str) -> Catalogue:
    rows = await pool.fetch("SELECT code, periodicity, source FROM indicator ORDER BY code")
    fields = [r["code"] for r in await pool.fetch("SELECT code FROM indicator_field ORDER BY code")]
    assert len(fields) == 9
    # Global ids as the API hands them out, read with the command centre's token.
    centre = await register("data:read " + " ".join(f"field:{f}" for f in fields), agency="VPCP")
    async with httpx.AsyncClient() as http:
        reader = Reader(http, real_hub, await token_for(centre))
        body = await reader.ask("{ indicators(first: 500) { edges { node { id code } } } }")
    ids = {e["node"]["code"]: e["node"]["id"] for e in body["data"]["indicators"]["edges"]}
    assert sorted(ids) == [r["code"] for r in rows]
    federated = frozenset(r["code"] for r in rows if r["source"] != "hub")
    return Catalogue([r["code"] for r in rows], {r["code"]: r["periodicity"] for r in rows}, fields, ids, federated)


@pytest.fixture(scope="module")
async def sessions(catalogue: Catalogue, register, token_for) -> dict[str, tuple[Grantee, str]]:
    """One client and one token per grantee."""
    tokens = {}
    for name, grantee in GRANTEES.items():
        scope = grantee.scope or "data:read " + " ".join(f"field:{f}" for f in catalogue.fields)
        client: Registered = await register(scope, agency=grantee.agency)
        tokens[name] = (Grantee(name, scope, grantee.agency, grantee.region), await token_for(client))
    return tokens


async def granted(pool, scope: str) -> set[str]:
    """The grant as DESIGN defines it: indicator: and field: scopes, and only with data:read."""
    scopes = scope.split()
    if "data:read" not in scopes:
        return set()
    codes = [s.removeprefix("indicator:") for s in scopes if s.startswith("indicator:")]
    fields = [s.removeprefix("field:") for s in scopes if s.startswith("field:")]
    rows = await pool.fetch("SELECT code FROM indicator WHERE code = ANY($1) OR field = ANY($2)", codes, fields)
    return {r["code"] for r in rows}


def in_region(code: str, region: str | None) -> bool:
    """A unit a region:79 grant may show: the nation, 79, its communes, and the old provinces that formed it."""
    if region is None or code == "VN":
        return True
    return code in {region, "74", "77"} or (len(code) == 5 and code.startswith(region))


async def read_everything(reader: Reader, catalogue: Catalogue, region: str | None) -> dict[str, Any]:
    """Every read path over every code; returns the answers the checks below look into."""
    codes = catalogue.codes
    answers: dict[str, Any] = {}

    answers["list"] = await reader.ask(f"{{ indicators(first: 500) {{ edges {{ node {{ ...I }} }} }} }} {INDICATOR}")

    async def direct(code: str) -> tuple[str, dict]:
        query = f"query One($c: String!) {{ indicator(code: $c) {{ ...I }} {CONTROL} }} {INDICATOR}"
        return code, await reader.ask(query, {"c": code})

    answers["direct"] = dict(await asyncio.gather(*(direct(c) for c in codes)))

    aliased, fragments, nodes, series, aggregates, points = [], [], [], [], [], []
    for part in chunks(codes):
        fields = " ".join(f'i_{c}: indicator(code: "{c}") {{ ...I }}' for c in part)
        aliased.append(reader.ask(f"{{ {fields} {CONTROL} }} {INDICATOR}"))
        spread = " ".join(f'f_{c}: indicator(code: "{c}") {{ ... on Indicator {{ ...I }} }}' for c in part)
        fragments.append(reader.ask(f"{{ ...Q }} fragment Q on Query {{ {spread} {CONTROL} }} {INDICATOR}"))
        by_id = " ".join(
            f'n_{c}: node(id: "{catalogue.node_ids[c]}") {{ __typename ... on Indicator {{ ...I }} }}' for c in part
        )
        nodes.append(reader.ask(f"{{ {by_id} {CONTROL} }} {INDICATOR}"))
        ranges = " ".join(
            f's_{c}: series(indicator: "{c}", from: "{SERIES_RANGE[catalogue.periodicity[c]][0]}", '
            f'to: "{SERIES_RANGE[catalogue.periodicity[c]][1]}", parent: "VN", level: PROVINCE) '
            "{ indicator { ...I } periods rows }"
            for c in part
        )
        series.append(reader.ask(f"{{ {ranges} {CONTROL} }} {INDICATOR}"))
        totals = " ".join(
            f'g_{c}: aggregate(indicator: "{c}", unit: "VN", period: "{LATEST[catalogue.periodicity[c]]}") '
            "{ indicator { ...I } unit { code } value }"
            for c in part
        )
        aggregates.append(reader.ask(f"{{ {totals} {CONTROL} }} {INDICATOR}"))
        lookups = " ".join(
            f'p_{c}: observation(indicator: "{c}", unit: "{region or "79"}", '
            f'period: "{LATEST[catalogue.periodicity[c]]}") {{ indicator {{ ...I }} unit {{ code }} value }}'
            for c in part
        )
        points.append(reader.ask(f"{{ {lookups} {CONTROL} }} {INDICATOR}"))
    for name, batch in (
        ("aliased", aliased),
        ("fragments", fragments),
        ("nodes", nodes),
        ("series", series),
        ("aggregates", aggregates),
        ("points", points),
    ):
        merged: dict[str, Any] = {}
        for body in await asyncio.gather(*batch):
            merged.update(body["data"])
        answers[name] = merged

    answers["nested"] = (
        await reader.ask(
            "{ agencies(first: 500) { edges { node { code indicators { ...I } } } }"
            f" regimes {{ code items {{ indicator {{ ...I }} }} }} {CONTROL} }} {INDICATOR}"
        )
    )["data"]
    answers["table"] = (
        await reader.ask(
            f'{{ table(indicators: {codes_literal(codes)}, parent: "VN", level: PROVINCE) '
            f"{{ columns {{ ...I }} rows }} {CONTROL} }} {INDICATOR}"
        )
    )["data"]
    connection = "{ edges { node { indicator { ...I } unit { code } period value } } pageInfo { hasNextPage } }"
    units = '["VN", "01", "48", "79", "01001", "79001"]'
    pages = " ".join(
        f'o_{f}: observations(indicators: {codes_literal(codes)}, units: {units}, from: "{p}", to: "{p}", '
        f"first: 500) {connection}"
        for f, p in LATEST.items()
    )
    provinces = (
        f'o_P: observations(indicators: {codes_literal(codes)}, parent: "VN", level: PROVINCE, first: 500) {connection}'
    )
    answers["observations"] = (await reader.ask(f"{{ {pages} {provinces} {CONTROL} }} {INDICATOR}"))["data"]
    return answers


def units_with_values(answers: dict[str, Any]) -> set[str]:
    """Units that appear with data in table, series, observations and point lookups."""
    units = {row["unit"] for row in block(answers["table"]["table"]["rows"])}
    for key, value in answers["series"].items():
        if key.startswith("s_") and value is not None:
            units.update(row["unit"] for row in block(value["rows"]))
    for key, value in answers["observations"].items():
        if key.startswith("o_") and value is not None:
            units.update(e["node"]["unit"]["code"] for e in value["edges"])
    for key, value in answers["points"].items():
        if key.startswith("p_") and value is not None:
            units.add(value["unit"]["code"])
    return units


@pytest.mark.parametrize("name", list(GRANTEES))
async def test_each_path_shows_exactly_the_grant(
    name: str, sessions, catalogue: Catalogue, pool, real_hub: str
) -> None:
    grantee, token = sessions[name]
    grant = await granted(pool, grantee.scope)
    denied = set(catalogue.codes) - grant
    if name == "command_centre":
        assert grant == set(catalogue.codes)
    if name in ("catalogue_only", "field_without_data_read"):
        assert grant == set()
    async with httpx.AsyncClient(timeout=30) as http:
        reader = Reader(http, real_hub, token)
        answers = await read_everything(reader, catalogue, grantee.region)

    # Exactly the grant, over all paths together and on the paths that list what one may read.
    assert reader.seen.codes == grant
    listed = {e["node"]["code"] for e in answers["list"]["data"]["indicators"]["edges"]}
    assert listed == grant
    assert set(indicator_codes(answers["nested"]["agencies"])) == grant
    assert set(indicator_codes(answers["nodes"])) == grant
    assert [c["code"] for c in answers["table"]["table"]["columns"]] == [c for c in catalogue.codes if c in grant]

    # Asked for by code: granted ones answer, denied ones are FORBIDDEN at the path that named them.
    for code, body in answers["direct"].items():
        if code in grant:
            assert body["data"]["indicator"]["code"] == code and "errors" not in body
        else:
            assert body["data"]["indicator"] is None
            assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["indicator"], "FORBIDDEN")]
    for prefix, answer in (
        ("i_", answers["aliased"]),
        ("f_", answers["fragments"]),
        ("s_", answers["series"]),
        ("g_", answers["aggregates"]),
        ("p_", answers["points"]),
    ):
        for code in catalogue.codes:
            path = f"{prefix}{code}"
            if code in grant:
                assert reader.forbidden_at(path) == set(), path
                if code in catalogue.federated and prefix in ("s_", "g_", "p_"):
                    continue  # values from a source this hub does not configure
                if prefix == "p_" and answer[path] is None:
                    continue  # a point lookup is null where no value is stored (e.g. national-only)
                assert answer[path] is not None, path
                shown = answer[path] if prefix in ("i_", "f_") else answer[path]["indicator"]
                assert shown["code"] == code
            else:
                assert answer[path] is None, path
                assert reader.forbidden_at(path) == {code}, path
    for code in denied:  # node(id) is a lookup by global id: nothing comes back for a denied one
        assert answers["nodes"][f"n_{code}"] is None
    # Lists of codes: the readable part is answered, each denied code reported once at the field.
    assert answers["table"]["table"] is not None
    assert reader.forbidden_at("table") == denied
    for alias in ("o_M", "o_Q", "o_A", "o_P"):
        assert answers["observations"][alias] is not None
        assert reader.forbidden_at(alias) == denied
    for alias in ("o_M", "o_Q", "o_A"):
        assert answers["observations"][alias]["pageInfo"]["hasNextPage"] is False
    # Granted values are really there (the matrix is not passing on empty answers).
    rows = block(answers["table"]["table"]["rows"])
    if grant:
        assert any(value is not None for row in rows for value in row["values"])
        assert any(answers["observations"][a]["edges"] for a in ("o_M", "o_Q", "o_A"))
        assert any(answers["points"][f"p_{c}"] is not None for c in grant)
    else:
        assert all(not any(row["values"] or []) for row in rows), rows[:2]

    units = units_with_values(answers)
    if grantee.region is None:
        assert {r["unit"] for r in rows} >= {"01", "48", "79"} and len(rows) == 34
    else:
        outside = {u for u in units if not in_region(u, grantee.region)}
        assert outside == set(), f"units outside region {grantee.region}: {sorted(outside)}"
        assert [r["unit"] for r in rows] == [grantee.region]
        # National aggregates stay readable to a province (DESIGN: the nation is always visible).
        for code in grant - catalogue.federated:
            total = answers["aggregates"][f"g_{code}"]
            assert total["unit"]["code"] == "VN"
        assert any(answers["aggregates"][f"g_{c}"]["value"] is not None for c in grant - catalogue.federated)


async def test_province_grant_refuses_other_units_by_name(sessions, real_hub: str) -> None:
    _, token = sessions["province"]
    async with httpx.AsyncClient() as http:
        reader = Reader(http, real_hub, token)
        body = await reader.http.post(
            f"{real_hub}/graphql",
            json={
                "query": '{ hn: observation(indicator: "RETAIL", unit: "01", period: "2026-M10") { value }'
                ' hnc: observation(indicator: "RETAIL", unit: "01001", period: "2026-M10") { value }'
                ' dn: aggregate(indicator: "RETAIL", unit: "48", period: "2026-M10") { value }'
                ' hcm: observation(indicator: "RETAIL", unit: "79", period: "2026-M10") { value }'
                ' vn: aggregate(indicator: "RETAIL", unit: "VN", period: "2026-M10") { value }'
                ' s: series(indicator: "RETAIL", units: ["01", "48", "79"], from: "2026-M09", to: "2026-M10") { rows }'
                ' t: table(indicators: ["RETAIL"], units: ["01", "48", "79", "01001", "79001"]) { rows } }'
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert body.status_code == 200
    answer = body.json()
    data = answer["data"]
    refused = {tuple(e["path"]): e["extensions"]["code"] for e in answer["errors"]}
    # Named units outside the region are refused by name on every path, series and table included.
    assert refused == {
        ("hn",): "FORBIDDEN",
        ("hnc",): "FORBIDDEN",
        ("dn",): "FORBIDDEN",
        ("s",): "FORBIDDEN",
        ("t",): "FORBIDDEN",
    }
    assert data["hn"] is None and data["hnc"] is None and data["dn"] is None
    assert data["hcm"]["value"] is not None and data["vn"]["value"] is not None
    assert [r["unit"] for r in block(data["s"]["rows"])] == ["79"]
    assert [r["unit"] for r in block(data["t"]["rows"])] == ["79", "79001"]
