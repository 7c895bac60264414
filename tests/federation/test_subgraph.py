"""The hub as an Apollo Federation 2 subgraph: its SDL composes with another subgraph's, by a real
composition library (@theguild/federation-composition, from package-lock.json), and ``_entities``
resolves Indicator and AdministrativeUnit references under the caller's grants."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

from tests.federation.conftest import gql

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(__file__).with_name("compose.mjs")
# Another subgraph of the supergraph: a budget system adding fields to the hub's entities.
BUDGET = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
scalar Date
type Indicator @key(fields: "code") { code: String! budgetLine: String }
type AdministrativeUnit @key(fields: "code validFrom") { code: String! validFrom: Date! budgetAllocated: Float }
type Query { budgetLines: [String!]! }
"""


def compose(tmp_path: Path, **subgraphs: str) -> tuple[int, dict]:
    node = shutil.which("node")
    assert node is not None, "node is not on PATH; the README's setup installs Node.js and runs `npm ci`"
    assert (ROOT / "node_modules" / "@theguild" / "federation-composition").is_dir(), "run `npm ci`"
    arguments = []
    for name, sdl in subgraphs.items():
        (tmp_path / f"{name}.graphql").write_text(sdl, encoding="utf-8")
        arguments.append(f"{name}={tmp_path / f'{name}.graphql'}")
    done = subprocess.run(
        [node, str(COMPOSE), *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode, json.loads(done.stdout)


async def test_the_hubs_sdl_composes_into_a_supergraph(start_hub, tmp_path: Path) -> None:
    hub = await start_hub("")
    body = await gql(hub, "{ _service { sdl } }")
    sdl = body["data"]["_service"]["sdl"]
    assert '@link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])' in sdl
    status, result = await asyncio.to_thread(compose, tmp_path, hub=sdl, budget=BUDGET)
    assert (status, result["errors"]) == (0, [])
    supergraph = result["supergraphSdl"]
    assert (
        '@join__type(graph: HUB, key: "code")' in supergraph and '@join__type(graph: BUDGET, key: "code")' in supergraph
    )
    assert "budgetLine: String @join__field(graph: BUDGET)" in supergraph
    assert "budgetAllocated: Float @join__field(graph: BUDGET)" in supergraph


async def test_composition_fails_on_a_conflicting_subgraph(start_hub, tmp_path: Path) -> None:
    # The harness can fail: a subgraph whose Indicator.code is an Int does not compose with the hub.
    hub = await start_hub("")
    sdl = (await gql(hub, "{ _service { sdl } }"))["data"]["_service"]["sdl"]
    status, result = await asyncio.to_thread(
        compose, tmp_path, hub=sdl, budget=BUDGET.replace("code: String! budgetLine", "code: Int! budgetLine")
    )
    assert status == 1 and any("Indicator.code" in e for e in result["errors"]), result["errors"]


async def test_entities_resolve_references_under_the_callers_grants(start_hub) -> None:
    hub = await start_hub("")
    query = """{ _entities(representations: [
        {__typename: "Indicator", code: "RETAIL"},
        {__typename: "Indicator", code: "UNEMP"},
        {__typename: "AdministrativeUnit", code: "79", validFrom: "2025-07-01"},
        {__typename: "AdministrativeUnit", code: "79", validFrom: "2008-08-01"},
        {__typename: "AdministrativeUnit", code: "79", validFrom: "2030-01-01"}
      ]) { __typename ... on Indicator { code nameEn } ... on AdministrativeUnit { id code nameEn validTo } } }"""
    body = await gql(hub, query, x_test_indicators="RETAIL")
    assert "errors" not in body, body
    retail, unemp, new_hcm, old_hcm, none = body["data"]["_entities"]
    assert retail == {"__typename": "Indicator", "code": "RETAIL", "nameEn": retail["nameEn"]}
    assert unemp is None  # not granted: nothing comes back, as with node(id)
    assert (new_hcm["nameEn"], new_hcm["validTo"]) == ("Ho Chi Minh City", None)
    assert old_hcm["validTo"] == "2025-06-30" and none is None
    by_id = await gql(
        hub,
        '{ _entities(representations: [{__typename: "AdministrativeUnit", id: "' + new_hcm["id"] + '"}]) '
        "{ ... on AdministrativeUnit { code validFrom } } }",
    )
    assert by_id["data"]["_entities"] == [{"code": "79", "validFrom": "2025-07-01"}]
