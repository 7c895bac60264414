"""A TCP proxy the fault tests control, put between a hub and PostgreSQL on 127.0.0.1.

It forwards bytes both ways until told otherwise:

- ``freeze()``: every connection, open or new, stops moving bytes in either direction; new ones are
  accepted and then held. That is what a hung (SIGSTOPped) PostgreSQL looks like to the hub: the
  kernel still accepts, nothing ever answers. ``thaw()`` lets the held bytes through.
- ``blackhole_open()``: the connections open now stop moving bytes for good, without a FIN or an RST
  (a NAT or firewall that dropped their state); new connections work normally. That is a silent
  partition of long-lived connections such as the hub's LISTEN connection.
- ``reset_all()``: every open connection is closed at once with an RST.
- ``refuse()``: PostgreSQL down: open connections are reset and new ones reset as they arrive,
  until ``admit()``.

It forwards to a TCP address or to PostgreSQL's Unix socket (the embedded server's): ``tcp_proxy(url)``
takes a database URL and ``proxy.url`` is the same URL through the proxy. It runs in the test's event
loop; everything it opens is closed by ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    frozen: bool = False  # dropped for good (blackhole_open)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class TcpProxy:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        parts = urlsplit(database_url)
        query = dict(parse_qsl(parts.query))
        socket_dir = query.get("host", parts.hostname or "")
        port = parts.port or int(query.get("port", 5432))
        # A host that is a directory names a Unix socket, as libpq and asyncpg read it.
        self.target: tuple[str, int] | str = (
            f"{socket_dir}/.s.PGSQL.{port}" if socket_dir.startswith("/") else (socket_dir, port)
        )
        self._links: set[_Link] = set()
        self._moving = asyncio.Event()
        self._moving.set()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.accepted = 0
        self.refusing = False

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        """The database URL, through the proxy."""
        parts = urlsplit(self.database_url)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")])
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

    def freeze(self) -> None:
        self._moving.clear()

    def thaw(self) -> None:
        self._moving.set()

    def blackhole_open(self) -> int:
        """Silently drop every connection open now; returns how many."""
        for link in self._links:
            link.frozen = True
        return len(self._links)

    def reset_all(self) -> None:
        for link in list(self._links):
            self._drop(link, reset=True)

    def refuse(self) -> None:
        self.refusing = True
        self.reset_all()

    def admit(self) -> None:
        self.refusing = False

    @property
    def open_links(self) -> int:
        return sum(1 for link in self._links if not link.frozen)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            self._drop(link, reset=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        if self.refusing:
            self._drop(link, reset=True)
            return
        self._links.add(link)
        try:
            await self._moving.wait()  # a frozen server accepts and never answers
            if isinstance(self.target, str):
                server_reader, link.server = await asyncio.open_unix_connection(self.target)
            else:
                server_reader, link.server = await asyncio.open_connection(*self.target)
        except OSError:
            self._drop(link, reset=True)
            return
        link.tasks = [
            asyncio.create_task(self._pump(link, reader, link.server)),
            asyncio.create_task(self._pump(link, server_reader, writer)),
        ]

    async def _pump(self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._moving.wait()
                if link.frozen:
                    await asyncio.Event().wait()  # held until the proxy closes: no FIN, no RST
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not link.frozen:
                self._drop(link, reset=False)

    def _drop(self, link: _Link, *, reset: bool) -> None:
        self._links.discard(link)
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for writer in (link.client, link.server):
            if writer is None:
                continue
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None and sock.family != socket.AF_UNIX:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()


@contextlib.asynccontextmanager
async def tcp_proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy(database_url).start()
    try:
        yield proxy
    finally:
        await proxy.close()
