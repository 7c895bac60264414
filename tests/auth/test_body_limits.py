"""One body limit (HUB_MAX_BODY_BYTES) on every route that reads a body, refused before it is all read.

Spoken to in raw HTTP/1.1 on a real hub: a body announced larger than the limit is answered before
any of it is sent, and a chunked body that passes the limit is answered although it never ends, so
the hub cannot have waited for (or buffered) the whole of it. Each route answers 413 in its own error
format.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
import orjson
import pytest

from tests.auth.conftest import Registered, serving

LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    content_type: str
    check: Callable[[Answer], None]


def graphql_error(answer: Answer) -> None:
    assert answer.headers["content-type"].startswith("application/graphql-response+json")
    assert orjson.loads(answer.body)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def upload_error(answer: Answer) -> None:
    assert orjson.loads(answer.body)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def oauth_error(answer: Answer) -> None:  # RFC 6749 section 5.2
    assert orjson.loads(answer.body)["error"] == "invalid_request"


def sign_in_page(answer: Answer) -> None:
    assert answer.headers["content-type"].startswith("text/html")
    assert b"too large" in answer.body


FORM = "application/x-www-form-urlencoded"
ROUTES = {
    "graphql": Route("POST", "/graphql", "application/json", graphql_error),
    "upload": Route("PUT", "/reports/{submission}/values", "text/csv", upload_error),
    "token": Route("POST", "/oauth/token", FORM, oauth_error),
    "revoke": Route("POST", "/oauth/revoke", FORM, oauth_error),
    "introspect": Route("POST", "/oauth/introspect", FORM, oauth_error),
    "sign-in form": Route("POST", "/oauth/authorize", FORM, sign_in_page),
}


OPEN = """mutation($k: String!) { openDraft(regime: "BC_KTXH_THANG", period: "2026-M11", idempotencyKey: $k)
  { submissionId } }"""


@pytest.fixture(scope="module")
async def own_database(new_demo_database) -> str:
    """A demo database of this module's: it opens a draft report, which the shared one must not see."""
    return await new_demo_database()


@pytest.fixture(scope="module")
async def small_hub(own_database: str) -> AsyncIterator[str]:
    # The month's reporting window is open at this time (Decree 09/2019 cut-off, tests/reports).
    opened = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)
    async with serving(own_database, max_body_bytes=LIMIT, clock=lambda: opened) as url:
        yield url


@pytest.fixture(scope="module")
async def uploader(small_hub: str, own_database: str, register, token_for) -> tuple[int, str]:
    """A draft of a province's report and a token of that province's client: the upload endpoint
    reads a file only for such a caller."""
    pool = await asyncpg.create_pool(own_database, min_size=1, max_size=1)
    try:
        client: Registered = await register("reports:submit", agency="UBND_79", database=pool)
    finally:
        await pool.close()
    token = await token_for(client, hub=small_hub)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{small_hub}/graphql",
            json={"query": OPEN, "variables": {"k": str(uuid.uuid4())}},
            headers={"Authorization": f"Bearer {token}"},
        )
    return response.json()["data"]["openDraft"]["submissionId"], token


async def exchange(hub: str, head: str, pieces: list[bytes]) -> Answer:
    """Send a request head and body pieces (not necessarily all the body), and read one answer."""
    host, port = hub.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode())
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
        status_line, _, rest = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).partition(b"\r\n")
        headers = {}
        for line in rest.decode("latin-1").split("\r\n"):
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        return Answer(int(status_line.split()[1]), headers, body)
    finally:
        writer.close()


def request_head(route: Route, uploader: tuple[int, str], framing: str) -> str:
    submission, token = uploader
    return (
        f"{route.method} {route.path.format(submission=submission)} HTTP/1.1\r\nhost: test\r\n"
        f"content-type: {route.content_type}\r\nauthorization: Bearer {token}\r\n"
        f"idempotency-key: body-limit\r\n{framing}\r\n"
    )


@pytest.mark.parametrize("name", list(ROUTES))
async def test_a_body_announced_past_the_limit_is_refused_before_it_is_sent(
    small_hub: str, uploader: tuple[int, str], name: str
) -> None:
    route = ROUTES[name]
    head = request_head(route, uploader, f"content-length: {LIMIT * 1000}\r\n")
    answer = await exchange(small_hub, head, [b"x" * 100])  # the rest never comes
    assert answer.status == 413, answer.body
    route.check(answer)
    assert answer.headers["x-request-id"]


@pytest.mark.parametrize("name", list(ROUTES))
async def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    small_hub: str, uploader: tuple[int, str], name: str
) -> None:
    route = ROUTES[name]
    head = request_head(route, uploader, "transfer-encoding: chunked\r\n")
    chunk = b"%x\r\n%s\r\n" % (1024, b"a" * 1024)
    # Twice the limit, and no last chunk: a hub that waited for the whole body would never answer.
    answer = await exchange(small_hub, head, [chunk] * (2 * LIMIT // 1024))
    assert answer.status == 413, answer.body
    route.check(answer)


async def test_a_body_within_the_limit_is_read(small_hub: str, uploader: tuple[int, str]) -> None:
    route = ROUTES["graphql"]
    body = orjson.dumps({"query": "{ __typename }", "pad": "x" * (LIMIT - 100)})
    assert len(body) <= LIMIT
    answer = await exchange(small_hub, request_head(route, uploader, f"content-length: {len(body)}\r\n"), [body])
    assert answer.status == 200 and orjson.loads(answer.body) == {"data": {"__typename": "Query"}}
