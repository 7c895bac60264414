"""The connector registry: a kind registered once is parsed, served and in the schema."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from nrhub.config.errors import ConfigError
from nrhub.config.settings import load_settings
from nrhub.resolvers.sources.connectors import KINDS
from nrhub.schema.build import schema

ROOT = Path(__file__).resolve().parents[2]
ECHO = """
[[source]]
name = "echoes"
kind = "echo"
answer = "seven"
[source.indicators]
POP_MONTHLY = "population"
"""


def test_the_schema_enum_is_the_registry() -> None:
    enum = schema.schema_converter.type_map["SourceKind"].implementation
    assert list(enum.values) == [name.upper() for name in KINDS] == ["POSTGRES", "HTTP", "GRAPHQL"]


def test_an_unregistered_kind_is_refused_naming_the_registered_ones(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(ECHO, encoding="utf-8")
    with pytest.raises(ConfigError, match="kind must be one of postgres, http, graphql"):
        load_settings(path, environ={})


async def test_a_registered_kind_is_parsed_served_and_in_the_schema(fed_database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(ECHO, encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.federation.extra_kind", fed_database_url, str(path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    found = json.loads(out)
    # Configuration parsing knows the kind's own key and builds its target ...
    assert found["parsed"] == {"kind": "echo", "target": "EchoTarget"}
    # ... the schema's enum has it, after the built-in kinds ...
    assert found["enum"] == ["POSTGRES", "HTTP", "GRAPHQL", "ECHO"]
    # ... and the sources query answers it, never INTERNAL.
    assert found["status"] == 200
    assert found["answer"] == {"data": {"sources": [{"name": "echoes", "kind": "ECHO", "indicators": ["POP_MONTHLY"]}]}}
