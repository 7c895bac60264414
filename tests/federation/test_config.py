"""Sources in the settings file: every key checked, and a mistake named in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nrhub.config.errors import ConfigError
from nrhub.config.settings import load_settings
from nrhub.resolvers.sources.http_json import HttpTarget
from nrhub.resolvers.sources.postgres import PostgresTarget
from nrhub.resolvers.sources.remote_graphql import GraphQLTarget

ROOT = Path(__file__).resolve().parents[2]
HTTP = """
[[source]]
name = "tourism"
kind = "http"
url = "http://127.0.0.1:8101/api/{indicator}?units={units}&periods={periods}"
[source.indicators]
INTL_VISITORS = "arrivals"
"""


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None):
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ=environ or {})


def test_the_demo_sources_file_is_complete_and_valid() -> None:
    settings = load_settings(ROOT / "hub" / "demo" / "sources.toml", environ={})
    popdb, tourism = settings.sources
    assert (popdb.name, popdb.kind, tourism.name, tourism.kind) == ("popdb", "postgres", "tourism", "http")
    assert isinstance(popdb.target, PostgresTarget) and popdb.target.url == "popdb"
    assert isinstance(tourism.target, HttpTarget) and tourism.target.mapping.rows == ("data",)
    assert tourism.policy.cache_ttl == 300 and tourism.policy.retries == 2


def test_the_docs_example_is_complete_and_valid(tmp_path: Path) -> None:
    section = (ROOT / "docs" / "federation.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    settings = load(tmp_path, example.group(1))
    assert [s.kind for s in settings.sources] == ["postgres", "http", "graphql"]
    graphql = settings.sources[2].target
    assert isinstance(graphql, GraphQLTarget) and graphql.batches_indicators


def test_defaults_apply_and_values_are_cast(tmp_path: Path) -> None:
    (source,) = load(tmp_path, HTTP + "\n").sources
    assert source.policy.timeout == 3.0 and source.policy.cache_ttl == 0 and source.policy.retries == 1
    assert isinstance(source.target, HttpTarget) and source.target.idempotent  # GET
    post_text = (
        HTTP.replace('kind = "http"', 'kind = "http"\nmethod = "POST"') + '[source.mapping]\nindicator = "name"\n'
    )
    (post,) = load(tmp_path, post_text).sources
    assert isinstance(post.target, HttpTarget) and not post.target.idempotent  # POST: never retried unless declared


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('kind = "http"', 'kind = "ftp"'), "kind must be one of postgres, http, graphql"),
        (('kind = "http"', 'kind = "http"\ntimout = 2'), "unknown key 'timout'"),
        (('kind = "http"', 'kind = "http"\nretries = 9'), "retries must be between 0 and 5"),
        (('kind = "http"', 'kind = "http"\nmax_concurrency = true'), "max_concurrency must be an integer"),
        (('kind = "http"', 'kind = "http"\nstatus = "FINAL"'), "status must be one of"),
        (("{indicator}", "{indicator}&key={secret}"), "url may use only"),
        (('name = "tourism"', 'name = "hub"'), "name must be lower-case"),
        (('INTL_VISITORS = "arrivals"', 'intl = "arrivals"'), "'intl' is not an indicator code"),
        (('kind = "http"', 'kind = "http"\nmethod = "POST"'), "needs indicator"),
    ],
)
def test_a_mistake_stops_the_start_naming_it(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(tmp_path, HTTP.replace(*change))


def test_graphql_sources_take_one_query_operation_only(tmp_path: Path) -> None:
    base = """
[[source]]
name = "stats"
kind = "graphql"
url = "http://127.0.0.1:9/graphql"
query = "%s"
[source.indicators]
FDI_REG = "fdi"
"""
    ok = load(tmp_path, base % "query($indicator: String!, $units: [String!]!, $periods: [String!]!) { v }")
    assert not ok.sources[0].target.batches_indicators
    for query, message in [
        ("mutation($indicator: String!, $units: [String!]!, $periods: [String!]!) { v }", "never a mutation"),
        ("query($units: [String!]!) { v }", "must declare $units, $periods"),
        ("query { v", "does not parse"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load(tmp_path, base % query)


def test_two_sources_with_one_name_and_postgres_without_a_target_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="two sources are named 'tourism'"):
        load(tmp_path, HTTP + HTTP)
    with pytest.raises(ConfigError, match="either url"):
        load(tmp_path, '[[source]]\nname = "p"\nkind = "postgres"\n[source.indicators]\nX = "SELECT 1"\n')


def test_sources_come_only_from_source_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting HUB_SOURCES"):
        load(tmp_path, HTTP, environ={"HUB_SOURCES": "x"})
    with pytest.raises(ConfigError, match="unknown setting 'sources'"):
        load(tmp_path, "[hub]\nsources = 1\n")
    with pytest.raises(ConfigError, match=r"\[\[source\]\] tables"):
        load(tmp_path, "source = 1\n")
