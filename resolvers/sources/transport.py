"""One HTTP exchange with a source: sent through httpx, read as a stream, refused past ``max_bytes``.

The answer is counted as it arrives (after decompression, so a small compressed body cannot
expand unnoticed), and the connection is dropped as soon as the limit is passed: a source that
sends 100 MB costs the hub ``max_bytes`` of memory and no more.
"""

from __future__ import annotations

from typing import Any

import httpx

from nrhub.resolvers.sources.failures import (
    SourceBadStatus,
    SourceConnectionFailed,
    SourceMalformed,
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
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise SourceTooLarge(f"more than {max_bytes} bytes")
        finally:
            await response.aclose()
    except httpx.TimeoutException as exc:
        raise SourceTimeout(f"{type(exc).__name__}: {exc}") from None
    except httpx.DecodingError as exc:
        raise SourceMalformed(f"the body cannot be decoded: {exc}") from None
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise SourceConnectionFailed(f"{type(exc).__name__}: {exc}") from None
    return parse_json(bytes(body))


def new_client(timeout: float, max_connections: int) -> httpx.AsyncClient:
    """A client for one source: its own connection limit, no redirects, no proxy from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,
        trust_env=False,
    )
