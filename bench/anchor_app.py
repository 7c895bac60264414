"""The minimal Starlette anchor: the benchmarked queries' rows as JSON over HTTP, without GraphQL.

Served by uvicorn in its own process, one worker, with the server settings ``nrhub serve`` uses
(uvicorn's defaults: uvloop and httptools when installed; once started, the cyclic collector's
settings, nrhub.web.collector.settle_collector), so that against the hub it differs only in what runs
inside the request. ``POST /graphql`` is the minimal strawberry endpoint of the point lookup
(bench/strawberry_anchor.py). Run by bench/read_api.py::

    python -m bench.anchor_app --dsn postgresql://... --port 8123 --indicators A,B,...
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.pool import create_pool
from bench.queries import build_queries
from bench.strawberry_anchor import graphql_endpoint
from nrhub.web.collector import settle_collector

JSON = "application/json"


def create_app(dsn: str, indicators: list[str]) -> Starlette:
    queries = build_queries(indicators)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await create_pool(dsn)
        settle_collector()  # as nrhub serve does once started
        try:
            yield
        finally:
            await app.state.pool.close()

    def endpoint(name: str):
        anchor = queries[name].anchor

        async def handle(request: Request) -> Response:
            return Response(await anchor(request.app.state.pool), media_type=JSON)

        return handle

    async def ping(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    routes = [Route(f"/{name}", endpoint(name), methods=["POST"]) for name in queries]
    routes.append(Route("/ping", ping, methods=["GET", "POST"]))
    routes.append(Route("/graphql", graphql_endpoint, methods=["POST"]))
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--indicators", required=True, help="comma-separated indicator codes of the table")
    args = parser.parse_args()
    app = create_app(args.dsn, args.indicators.split(","))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
