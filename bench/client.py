"""The two HTTP clients the benchmark can drive the servers with, behind one small interface.

- ``RawClient``: HTTP/1.1 with keep-alive over asyncio streams, one connection per worker, no
  parsing beyond the status line and Content-Length. It costs the client process little CPU, which
  matters on a 2-core machine where client, server and PostgreSQL share the cores.
- ``HttpxClient``: ``httpx.AsyncClient`` with a connection pool, the client the hub's tests use.

``read_api.py --client-check`` measures both against a trivial endpoint, so the choice is measured,
not assumed. Both send the same request bytes to the hub and to the Starlette anchor.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx

HEADERS = {"content-type": "application/json", "accept": "application/json"}


class ProtocolError(Exception):
    """The server answered something this minimal client does not read (e.g. chunked bodies)."""


class Client(Protocol):
    async def post(self, worker: int, path: str, body: bytes) -> tuple[int, bytes]: ...

    async def get(self, worker: int, path: str) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, keep_alive = None, True
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise ProtocolError(f"transfer-encoding {value.strip()!r} is not read by this client")
            elif name == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
        if length is None:
            raise ProtocolError("response without Content-Length")
        return status, await self.reader.readexactly(length), keep_alive

    def close(self) -> None:
        self.writer.close()


class RawClient:
    """One keep-alive connection per worker to ``127.0.0.1:port``."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._connections: dict[int, _Connection] = {}
        self._host_header = f"{host}:{port}"

    async def _connect(self, worker: int) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        conn = self._connections[worker] = _Connection(reader, writer)
        return conn

    async def _request(self, worker: int, request: bytes) -> tuple[int, bytes]:
        conn = self._connections.get(worker)
        reused = conn is not None and not conn.reader.at_eof()
        if not reused:
            if conn is not None:
                conn.close()  # the server closed it while it was idle
            conn = await self._connect(worker)
        try:
            try:
                status, body, keep_alive = await conn.exchange(request)
            except (ConnectionResetError, asyncio.IncompleteReadError) as exc:
                # uvicorn closes keep-alive connections idle for 5 s; a request that met such a
                # close before any byte of the answer is sent again once, on a new connection.
                if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
                conn.close()
                conn = await self._connect(worker)
                status, body, keep_alive = await conn.exchange(request)
        except BaseException:
            # A half-read response leaves the stream unusable: the next request opens a new one.
            self._connections.pop(worker, None)
            conn.close()
            raise
        if not keep_alive:
            del self._connections[worker]
            conn.close()
        return status, body

    async def post(self, worker: int, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self._host_header}\r\ncontent-type: application/json\r\n"
            f"accept: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        return await self._request(worker, head + body)

    async def get(self, worker: int, path: str) -> tuple[int, bytes]:
        head = f"GET {path} HTTP/1.1\r\nhost: {self._host_header}\r\naccept: application/json\r\n\r\n"
        return await self._request(worker, head.encode())

    async def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()


class HttpxClient:
    """``httpx.AsyncClient`` with a keep-alive pool large enough for every worker."""

    def __init__(self, port: int, host: str = "127.0.0.1", connections: int = 32) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(base_url=f"http://{host}:{port}", limits=limits, timeout=60)

    async def post(self, worker: int, path: str, body: bytes) -> tuple[int, bytes]:
        response = await self._client.post(path, content=body, headers=HEADERS)
        return response.status_code, response.content

    async def get(self, worker: int, path: str) -> tuple[int, bytes]:
        response = await self._client.get(path, headers={"accept": "application/json"})
        return response.status_code, response.content

    async def close(self) -> None:
        await self._client.aclose()


CLIENTS = {"raw": RawClient, "httpx": HttpxClient}
