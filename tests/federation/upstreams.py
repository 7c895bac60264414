"""Real upstream services for the federation tests, each keeping its own log of the calls it got.

- ``PopulationDatabase``: a second PostgreSQL database; its function ``observed_population`` sends a
  NOTIFY for every call it answers, which a listening connection records (NOTIFY is allowed in
  the read-only transactions the hub uses).
- ``ArrivalsApi``: an HTTP JSON service (Starlette on uvicorn) whose behaviour a test switches:
  ok, slow, hang, 500, malformed JSON, a malformed value, or a 100 MB answer.
- ``StatsGraphQL``: a small GraphQL service (graphql-core behind Starlette).
- ``ResetServer``: accepts a connection, reads the request and resets the connection.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import uvicorn
from graphql import build_schema, graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import server_socket

# Exact decimals: the hub must show these digits, never a float's.
POPULATION = {
    ("79", "2026-M09"): {"": "9876543.21", "SEX=F": "5000000.10", "SEX=M": "4876543.11"},
    ("79", "2026-M10"): {"": "9880001.5", "SEX=F": "5002000.5", "SEX=M": "4878001.0"},
    ("01", "2026-M10"): {"": "8600000", "SEX=F": "4400000", "SEX=M": "4200000"},
    ("VN", "2026-M10"): {"": "101234567", "SEX=F": "51000000", "SEX=M": "50234567"},
    ("79", "2026-M07"): {"": "9870000"},  # with 2026-M09, a whole quarter
    ("79", "2026-M08"): {"": "9872000"},
    ("79", "2024-M10"): {"": "1"},  # old Ho Chi Minh City's code, before the new province existed
    ("74", "2024-M10"): {"": "2"},  # the two other provinces the new Ho Chi Minh City was formed from
    ("77", "2024-M10"): {"": "3"},
}
ARRIVALS = {
    ("79", "2026-M09"): 401234,
    ("79", "2026-M10"): 512345,
    ("01", "2026-M10"): 433210,
    ("48", "2026-M10"): 250001,
    ("VN", "2026-M10"): 1987654,
    ("31", "2026-M07"): 100001,  # a whole quarter, for aggregates over periods
    ("31", "2026-M08"): 100002,
    ("31", "2026-M09"): 100003,
}
FDI = {("VN", "2026-M10"): 3012.25, ("79", "2026-M10"): 812.5, ("01", "2026-M10"): 640.75}


async def serve(app: Any, lifespan: str = "off") -> tuple[uvicorn.Server, asyncio.Task, str]:
    sock = server_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{port}"


async def stop(server: uvicorn.Server, task: asyncio.Task) -> None:
    server.should_exit = True
    await task


class PopulationDatabase:
    """The national population database stand-in: ``observed_population($1, $2)`` answers and logs."""

    SETUP = """
    CREATE TABLE population (unit text, period text, dims text, persons numeric);
    CREATE FUNCTION observed_population(units text[], periods text[])
    RETURNS TABLE (unit text, period text, dims text, value numeric) LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('source_calls', json_build_object('units', units, 'periods', periods)::text);
        RETURN QUERY SELECT p.unit, p.period, p.dims, p.persons FROM population p
                     WHERE p.unit = ANY(units) AND p.period = ANY(periods);
    END $$;
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.calls: list[dict[str, list[str]]] = []
        self._listener: asyncpg.Connection | None = None

    async def start(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(self.SETUP)
            await conn.executemany(
                "INSERT INTO population VALUES ($1, $2, $3, $4::numeric)",
                [(u, p, d, v) for (u, p), cells in POPULATION.items() for d, v in cells.items()],
            )
        finally:
            await conn.close()
        self._listener = await asyncpg.connect(self.url)
        await self._listener.add_listener("source_calls", lambda *args: self.calls.append(json.loads(args[-1])))

    async def settled(self) -> list[dict[str, list[str]]]:
        """The calls so far, once notifications in flight have arrived."""
        assert self._listener is not None
        await self._listener.execute("SELECT 1")
        await asyncio.sleep(0.05)
        return self.calls

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()


@dataclass
class ArrivalsApi:
    """The ministry API stand-in: ``GET /api/{indicator}?units=…&periods=…``."""

    mode: str = "ok"
    delay: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    bytes_sent: int = 0
    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/api/batch", self.batch, methods=["POST"]), Route("/api/{indicator}", self.endpoint)]
        )

    async def batch(self, request: Request) -> Response:
        """``POST /api/batch`` with ``{indicators, units, periods}``: rows name their indicator."""
        body = await request.json()
        self.calls.append({"indicators": body["indicators"], "units": body["units"], "periods": body["periods"]})
        if self.mode == "500":
            return JSONResponse({"error": "busy"}, 500)
        rows = [
            {"indicator": name, "province": u, "month": p, "arrivals": ARRIVALS[(u, p)]}
            for name in body["indicators"]
            for u in body["units"]
            for p in body["periods"]
            if (u, p) in ARRIVALS
        ]
        return JSONResponse({"data": rows})

    async def endpoint(self, request: Request) -> Response:
        units = [u for u in request.query_params.get("units", "").split(",") if u]
        periods = [p for p in request.query_params.get("periods", "").split(",") if p]
        self.calls.append({"indicator": request.path_params["indicator"], "units": units, "periods": periods})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "hang":
            await self.release.wait()
        if self.mode == "500":
            return JSONResponse({"error": "database exploded at db7.internal:5432"}, 500)
        if self.mode == "malformed-json":
            return Response(
                b'{"data": [{"province": "79", "month": "2026-M10", "arrivals": 5123', media_type="application/json"
            )
        if self.mode == "huge":
            return StreamingResponse(self._huge(), media_type="application/json")
        rows = [
            {"province": u, "month": p, "arrivals": ARRIVALS[(u, p)], "status": "OFFICIAL"}
            for u in units
            for p in periods
            if (u, p) in ARRIVALS
        ]
        if self.mode == "malformed-value":
            rows[0]["arrivals"] = "512,345"  # a string that looks like a number: refused, not coerced
        return JSONResponse({"data": rows})

    async def _huge(self) -> AsyncIterator[bytes]:
        chunk = b'{"province": "79", "month": "2026-M10", "arrivals": 1},' * 18_000  # about 1 MB
        yield b'{"data": ['
        self.bytes_sent = 0
        while self.bytes_sent < 100_000_000:
            yield chunk
            self.bytes_sent += len(chunk)
            await asyncio.sleep(0)  # lets the server notice that the client hung up
        yield b"{}]}"


STATS_SDL = """
type Figure { indicator: String!, unit: String!, period: String!, value: Float }
type Query { figures(indicators: [String!]!, units: [String!]!, periods: [String!]!): [Figure!]! }
"""


@dataclass
class StatsGraphQL:
    """A statistics office's GraphQL API stand-in, batching indicators in one query."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    delay: float = 0.0

    def app(self) -> Starlette:
        schema = build_schema(STATS_SDL)

        def figures(_info: Any, indicators: list[str], units: list[str], periods: list[str]) -> list:
            return [
                {"indicator": i, "unit": u, "period": p, "value": FDI[(u, p)]}
                for i in indicators
                for u in units
                for p in periods
                if i == "fdi_registered" and (u, p) in FDI
            ]

        async def endpoint(request: Request) -> JSONResponse:
            body = await request.json()
            self.calls.append(body.get("variables") or {})
            if self.delay:
                await asyncio.sleep(self.delay)
            result = await graphql(
                schema, body["query"], root_value={"figures": figures}, variable_values=body.get("variables")
            )
            payload: dict[str, Any] = {"data": result.data}
            if result.errors:
                payload["errors"] = [{"message": e.message} for e in result.errors]
            return JSONResponse(payload)

        return Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])


class ResetServer:
    """Reads a request, then resets the connection (RST, not an orderly close)."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.read(1024)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
