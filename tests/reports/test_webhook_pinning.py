"""A delivery goes to the address that was checked, even when its host name resolves elsewhere a
moment later (DNS rebinding): the check and the connection cannot disagree.

The resolver is the one part stood in for: the hub's own event loop answers ``rebound.invalid``
with 127.0.0.1 the first time and a public address after that. A hub that resolved the name again
to connect would go to the public address (and fail); the receiver, a real HTTP server on 127.0.0.1,
sees the delivery with the name in its Host header.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx

from nrhub.resolvers.webhook_delivery import Claimed, DeliveryPolicy, pinned, send

NAME = "rebound.invalid"


async def test_the_connection_goes_to_the_address_checked() -> None:
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    resolve = loop.getaddrinfo
    asked: list[str] = []

    async def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return await resolve(host, *args, **kwargs)
        asked.append(host)
        address = "127.0.0.1" if len(asked) == 1 else "203.0.113.9"  # then a public (TEST-NET-3) one
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    loop.getaddrinfo = rebinding  # type: ignore[method-assign]
    try:
        delivery = Claimed(1, "reminder.overdue", "{}", 1, f"http://{NAME}:{port}/hook", "secret")
        async with httpx.AsyncClient(follow_redirects=False) as http:
            outcome = await send(http, delivery, DeliveryPolicy(timeout=3.0, allow_loopback=True))
    finally:
        del loop.getaddrinfo
        server.close()
    assert outcome.delivered, outcome
    assert asked == [NAME]  # resolved once, for the check
    assert f"host: {NAME}:{port}".encode() in heads[0].lower()


def test_the_pinned_request_keeps_the_name_for_host_and_tls() -> None:
    assert pinned("https://hooks.example.gov.vn/a?b=1", "203.0.113.9") == (
        "https://203.0.113.9/a?b=1",
        "hooks.example.gov.vn",
        {"sni_hostname": "hooks.example.gov.vn"},
    )
    assert pinned("http://localhost:8080/x", "::1") == ("http://[::1]:8080/x", "localhost:8080", {})
