"""One HTTP exchange with a source: sent through httpx, read as a stream, refused past ``max_bytes``.

The raw bytes are read as they arrive and decoded by the hub itself (decoding.py), so that both
what is received and what it decodes to are counted, step by step, and the connection is dropped
as soon as a limit is passed: a source that sends 100 MB, or 10 MB that inflate to 10 GB, costs the
hub about ``max_bytes`` of memory and no more. httpx's own decoding is not used: it inflates each
network read whole, 64 KiB of a gzip bomb into 64 MB at once.
"""

from __future__ import annotations

from typing import Any

import httpx

from nrhub.resolvers.sources.decoding import ACCEPT_ENCODING, BodyDecoder
from nrhub.resolvers.sources.failures import (
    SourceBadStatus,
    SourceConnectionFailed,
    SourceTimeout,
    SourceTooLarge,
)
from nrhub.resolvers.sources.values import parse_json


async def exchange(client: httpx.AsyncClient, request: httpx.Request, max_bytes: int) -> Any:
    """Send ``request``; return the JSON answer of a 200, or raise the matching SourceFailure."""
    try:
        response = await client.send(request, stream=True)
        try:
            if response.status_code != 200:
                raise SourceBadStatus(response.status_code)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise SourceTooLarge(f"announced {declared} bytes, more than {max_bytes}")
            decoder = BodyDecoder(response.headers.get("content-encoding", ""), max_bytes)
            async for raw in response.aiter_raw():
                decoder.feed(raw)
            body = decoder.finish()
        finally:
            await response.aclose()
    except httpx.TimeoutException as exc:
        raise SourceTimeout(f"{type(exc).__name__}: {exc}") from None
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise SourceConnectionFailed(f"{type(exc).__name__}: {exc}") from None
    return parse_json(body)


def new_client(timeout: float, max_connections: int) -> httpx.AsyncClient:
    """A client for one source: its own connection limit, no redirects, no proxy from the environment,
    and only the content codings the hub decodes itself asked for (httpx would add ``br`` and ``zstd``
    to its default whenever their packages happen to be installed)."""
    return httpx.AsyncClient(
        headers={"Accept-Encoding": ACCEPT_ENCODING},
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,
        trust_env=False,
    )
