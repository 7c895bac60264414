"""Slow, idle and too many clients against a real hub on 127.0.0.1, over raw sockets (issue 18, item 6).

Each client misbehaves in one way: sends nothing, sends its head a byte at a time, stalls its body,
never reads its answers, or stays idle after one; each must be closed within its timeout plus some
slack, while a client that is slow but keeps going is served, and a WebSocket is left to its pings.
Past the connection cap new connections are answered 503 with one warning logged, and the hub serves
again once they close; a request still running at the shutdown limit is answered 503, not 500. The
last test runs ``nrhub serve`` under a 256-descriptor limit, the issue's own setting, and stops it
with SIGTERM (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import psutil
import pytest
import websockets

from nrhub.auth.principal import Grants, Principal
from nrhub.config.errors import ConfigError
from nrhub.config.settings import Settings
from nrhub.web.server import RESERVED_DESCRIPTORS, connection_limits
from tests.conftest import serving_hub

SLACK = 1.5  # seconds a timer may fire late on a busy two-core machine
TIMEOUTS = {"header_timeout": 1.0, "body_timeout": 1.0, "write_timeout": 1.0, "keep_alive_timeout": 1}
INTROSPECTION = "/graphql?query=" + quote("{__schema{types{name description fields{name description args{name}}}}}")


async def introspector(request) -> Principal:
    """catalog:read, which introspection needs: its answers are tens of kilobytes, enough to fill buffers."""
    return Principal(grants=Grants(frozenset(), None), scopes=frozenset({"catalog:read", "data:read"}))


@pytest.fixture(scope="module")
async def hub(database_url: str) -> AsyncIterator[tuple[str, int]]:
    """A hub whose timeouts are one second; its host and port."""
    async with serving_hub(database_url, authenticate=introspector, introspection=True, **TIMEOUTS) as url:
        yield "127.0.0.1", int(url.rsplit(":", 1)[1])


async def connect(address: tuple[str, int]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(*address), 5)


async def closed_after(reader: asyncio.StreamReader, seconds: float) -> tuple[bytes, float]:
    """Everything the hub sends until it closes the connection, and how long that took; fails past ``seconds``."""
    started = time.monotonic()
    received = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"still open after {seconds} s, having sent {received[:200]!r}")
    return received, time.monotonic() - started


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def json_body(answer: bytes) -> dict:
    return json.loads(answer.partition(b"\r\n\r\n")[2])


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head + await asyncio.wait_for(reader.readexactly(length), 5)


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(hub):
    reader, writer = await connect(hub)
    received, took = await closed_after(reader, TIMEOUTS["header_timeout"] + SLACK)
    assert received == b""  # nothing was asked: nothing to answer
    assert took > TIMEOUTS["header_timeout"] - 0.3
    writer.close()


async def test_a_head_sent_a_byte_at_a_time_is_cut_off_with_408(hub):
    reader, writer = await connect(hub)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n")

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError):
            for _ in range(50):
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.1)

    dribbler = asyncio.create_task(dribble())
    received, _ = await closed_after(reader, TIMEOUTS["header_timeout"] + SLACK)
    dribbler.cancel()
    assert status_of(received) == 408
    assert json_body(received)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    writer.close()


async def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(hub):
    reader, writer = await connect(hub)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
    assert status_of(await read_answer(reader)) == 200
    received, _ = await closed_after(reader, TIMEOUTS["keep_alive_timeout"] + SLACK)
    assert received == b""
    writer.close()


async def test_a_stalled_body_is_answered_408_and_closed(hub):
    reader, writer = await connect(hub)
    head = b"POST /graphql HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    writer.write(head + b'{"query": ')
    received, _ = await closed_after(reader, TIMEOUTS["body_timeout"] + SLACK)
    assert status_of(received) == 408, received
    writer.close()


async def test_a_body_that_keeps_coming_slowly_is_served(hub):
    """Each pause is shorter than body_timeout; the whole body takes twice as long, and is answered."""
    query = b'{"query": "{ __typename }"}'
    reader, writer = await connect(hub)
    writer.write(b"POST /graphql HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n")
    writer.write(b"Content-Length: %d\r\n\r\n" % len(query))
    for start in range(0, len(query), 7):
        writer.write(query[start : start + 7])
        await asyncio.sleep(TIMEOUTS["body_timeout"] / 2)
    answer = await read_answer(reader)
    assert status_of(answer) == 200, answer
    assert json_body(answer) == {"data": {"__typename": "Query"}}
    writer.close()


async def test_a_client_that_never_reads_its_answers_is_cut_off_after_the_write_timeout(hub):
    host, port = hub
    async with httpx.AsyncClient() as client:
        one = len((await client.get(f"http://{host}:{port}{INTROSPECTION}")).content)
    count = 8_000_000 // one + 1  # more than the socket buffers on both sides hold
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, hub)
        request = f"GET {INTROSPECTION} HTTP/1.1\r\nHost: hub\r\n\r\n".encode()
        await loop.sock_sendall(sock, request * count)  # pipelined: answered one after another
        await asyncio.sleep(TIMEOUTS["write_timeout"] + SLACK + 1)
        received = 0
        try:
            async with asyncio.timeout(10):
                while chunk := await loop.sock_recv(sock, 1 << 20):
                    received += len(chunk)
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail(f"still sending after 10 s ({received} bytes): the hub waited for the reader")
    assert received < count * one / 2, f"{received} bytes of {count * one}: the hub waited for the reader"


async def test_an_unread_answer_left_in_the_hubs_buffer_does_not_keep_the_connection(hub):
    """An answer too big for the kernel's buffers by less than uvicorn's pause mark (64 KiB): its tail waits
    in uvicorn's buffer, and the close after the keep-alive timeout would wait for it for ever."""
    port = hub[1]
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.setblocking(False)
        await loop.sock_connect(sock, hub)
        client = sock.getsockname()
        await asyncio.sleep(0.1)
        # The hub serves in this process: its end of the connection is one of our own descriptors. Its
        # kernel buffer is made as small as on a slow link (loopback's would take the whole answer).
        (ours,) = [c for c in psutil.Process().net_connections("tcp") if c.laddr.port == port and c.raddr == client]
        with socket.socket(fileno=os.dup(ours.fd)) as hub_end:
            hub_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        await loop.sock_sendall(sock, f"GET {INTROSPECTION} HTTP/1.1\r\nHost: hub\r\n\r\n".encode())
        await asyncio.sleep(TIMEOUTS["keep_alive_timeout"] + TIMEOUTS["write_timeout"] + SLACK)
        held = [c for c in psutil.Process().net_connections("tcp") if c.laddr.port == port and c.raddr == client]
        assert held == [], "the hub still holds the connection"


async def test_a_websocket_outlives_the_header_and_body_timeouts(hub):
    host, port = hub
    async with websockets.connect(f"ws://{host}:{port}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        await asyncio.sleep(TIMEOUTS["header_timeout"] + TIMEOUTS["body_timeout"] + 0.5)
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"


async def test_past_the_cap_new_connections_get_503_with_one_warning_and_the_hub_serves_again(database_url, caplog):
    caplog.set_level(logging.INFO, logger="hub")
    async with serving_hub(database_url, max_connections=3, header_timeout=30.0) as url:
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        idle = [await connect(address) for _ in range(3)]
        await asyncio.sleep(0.2)  # all three accepted
        for _ in range(3):
            reader, writer = await connect(address)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
            received, _ = await closed_after(reader, 2)
            assert status_of(received) == 503, received
            assert b"retry-after: 1" in received.lower()
            assert json_body(received)["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
            writer.close()
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "hub"]
        assert len(warnings) == 1 and "max_connections" in warnings[0], warnings

        for _, writer in idle:
            writer.close()
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/healthz")).status_code == 200
        assert any("accepting connections again" in r.getMessage() for r in caplog.records)


async def test_a_request_still_running_at_the_shutdown_limit_is_answered_503(database_url):
    async with serving_hub(database_url, shutdown_timeout=1, body_timeout=30.0) as url:
        reader, writer = await connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        head = b"POST /graphql HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        writer.write(head + b'{"query": ')  # the request waits for the rest of its body
        await asyncio.sleep(0.2)
        answer = asyncio.create_task(closed_after(reader, 10))
    received, _ = await answer
    assert status_of(received) == 503, received
    assert b"retry-after: 1" in received.lower()
    assert json_body(received) == {
        "errors": [{"message": "the server is shutting down", "extensions": {"code": "SOURCE_UNAVAILABLE"}}]
    }
    writer.close()


def test_the_cap_is_lowered_below_the_open_file_limit_and_non_positive_settings_are_refused():
    settings = Settings(max_connections=1000, pool_max_size=10)
    assert connection_limits(settings, None).max_connections == 1000
    assert connection_limits(settings, 100_000).max_connections == 1000
    kept = RESERVED_DESCRIPTORS + 10 + 2  # the request pool and the owner's
    assert connection_limits(settings, 256).max_connections == 256 - kept
    with pytest.raises(ConfigError, match="open-file limit"):
        connection_limits(settings, kept)
    for name in ("header_timeout", "body_timeout", "write_timeout", "max_connections", "shutdown_timeout"):
        with pytest.raises(ConfigError, match=f"setting {name} must be positive"):
            settings.replace(**{name: 0})


@pytest.mark.slow
async def test_nrhub_serve_under_a_256_descriptor_limit_refuses_300_idle_sockets_then_serves(database_url):
    """The issue's case: 300 idle sockets against 256 descriptors made every new request fail, unlogged."""
    from tests.foundation.conftest import NRHUB, free_port, hub_env

    port = free_port()
    env = hub_env(HUB_DATABASE_URL=database_url, HUB_PORT=str(port), HUB_HEADER_TIMEOUT="30")
    process = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", f'ulimit -n 256 && exec "{NRHUB}" serve', env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    output = asyncio.create_task(process.stdout.read())
    base = f"http://127.0.0.1:{port}"
    try:
        await _ready(base, process)
        sockets = [await connect(("127.0.0.1", port)) for _ in range(300)]
        await asyncio.sleep(0.5)
        refused = 0
        for reader, _ in sockets:
            with contextlib.suppress(TimeoutError):
                refused += (await asyncio.wait_for(reader.read(4096), 0.01)).startswith(b"HTTP/1.1 503 ")
        assert refused >= 100  # 300 less the cap: 256 less what the hub keeps for its pools and files
        for _, writer in sockets:
            writer.close()
        await _ready(base, process)  # served again at once, not after the header timeout

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log = (await asyncio.wait_for(output, 10)).decode()
        print(log)  # shown when the test fails
    assert "Traceback" not in log
    assert "out of system resource" not in log and "Too many open files" not in log
    assert log.count("refusing new ones") == 1


async def _ready(base: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        async with asyncio.timeout(30):
            while True:
                assert process.returncode is None, "nrhub serve exited"
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{base}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
