"""A program that adds a source kind the way a developer would: one ``register`` call, nothing else.

Run by test_connectors.py in a process of its own (the schema's enum is built when the schema is
imported, so the kind is registered first, as a connector module imported at start would be). It
loads a settings file using the kind, serves a hub from it on 127.0.0.1 and prints, as JSON, what
configuration parsing made of the source, the schema's SourceKind enum and the ``sources`` answer.

    python -m tests.federation.extra_kind DATABASE_URL SETTINGS_FILE
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from nrhub.resolvers.sources.config import SourceConfig, SourceConfigError
from nrhub.resolvers.sources.connectors import ConnectorKind, register
from nrhub.resolvers.sources.values import Question, SourceValue


@dataclass(frozen=True, slots=True)
class EchoTarget:
    answer: str


def parse_echo(table: Mapping[str, Any]) -> EchoTarget:
    answer = table.get("answer")
    if not isinstance(answer, str):
        raise SourceConfigError("answer must be a string")
    return EchoTarget(answer)


class EchoConnector:
    """Answers nothing: the test is about where the kind shows up, not about values."""

    idempotent = True
    batches_indicators = True

    def __init__(self, config: SourceConfig) -> None:
        assert isinstance(config.target, EchoTarget)

    async def ask(self, question: Question) -> list[SourceValue]:
        return []

    async def close(self) -> None:
        pass


async def main(database_url: str, settings_file: str) -> dict[str, Any]:
    # Imported after the kind is registered, as the hub's own modules would be.
    from nrhub.auth.principal import Grants, Principal
    from nrhub.config.settings import load_settings
    from nrhub.schema.build import schema
    from nrhub.web.app import create_app
    from tests.federation.upstreams import serve, stop

    settings = load_settings(Path(settings_file), environ={}).replace(graphiql=False, pool_min_size=1)
    (source,) = settings.sources
    enum = schema.schema_converter.type_map["SourceKind"].implementation

    async def everything(request: Any) -> Principal:
        return Principal(grants=Grants(frozenset({"POP_MONTHLY"}), None), scopes=frozenset({"catalog:read"}))

    server, task, url = await serve(create_app(settings, database_url, authenticate=everything), lifespan="on")
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{url}/graphql", json={"query": "{ sources { name kind indicators } }"})
    finally:
        await stop(server, task)
    return {
        "parsed": {"kind": source.kind, "target": type(source.target).__name__},
        "enum": list(enum.values),
        "status": response.status_code,
        "answer": response.json(),
    }


if __name__ == "__main__":
    register(ConnectorKind("echo", frozenset({"answer"}), parse_echo, EchoConnector))
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
