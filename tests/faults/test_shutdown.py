"""SIGTERM under load: `nrhub serve` as a real process, with subscribers and clients reading when it comes.

What held before issue 18 and must stay held: the process stops within its graceful-shutdown limit and
WebSocket clients get close code 1012 (Service Restart). What issue 18 added: the exit status is 0, and
no request is answered 500 or in plain text on the way down (each gets its answer, or a 503 JSON error
with Retry-After, or finds the port closed).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import websockets

from nrhub.auth.clients import create_client
from tests.foundation.conftest import NRHUB, free_port, hub_env

pytestmark = pytest.mark.slow

READ = "{ indicators(first: 20) { edges { node { code } } } }"


async def test_sigterm_under_load_closes_websockets_with_1012_answers_cleanly_and_exits_0(
    database_url, pool, tmp_path: Path
) -> None:
    port = free_port()
    hub = f"http://127.0.0.1:{port}"
    env = hub_env(
        HUB_DATABASE_URL=database_url, HUB_SHUTDOWN_TIMEOUT="3", HUB_TOKEN_RATE_LIMIT="10000", HUB_GRAPHIQL="false"
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 (starting it does not block)
            [str(NRHUB), "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        async with asyncio.timeout(60), httpx.AsyncClient(timeout=10) as http:
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if (await http.get(f"{hub}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            async with pool.acquire() as conn:
                client, secret = await create_client(conn, agency="VPCP", scopes=["data:read", "catalog:read"])
            issued = await http.post(
                f"{hub}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
            )
            bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}

            sockets = []
            for _ in range(5):
                ws = await websockets.connect(
                    hub.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"]
                )
                await ws.send(json.dumps({"type": "connection_init", "payload": bearer}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                sockets.append(ws)

            answers: list[tuple[int, str]] = []
            stopping = asyncio.Event()

            async def reader() -> None:
                async with httpx.AsyncClient(timeout=10) as own:
                    while not stopping.is_set():
                        try:
                            response = await own.post(f"{hub}/graphql", json={"query": READ}, headers=bearer)
                        except httpx.TransportError:
                            await asyncio.sleep(0.05)  # the port is closing or closed: nothing answered wrongly
                            continue
                        answers.append((response.status_code, response.headers.get("content-type", "")))

            readers = [asyncio.create_task(reader()) for _ in range(8)]
            await asyncio.sleep(1.0)  # under load
            served_before = len(answers)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            status = await asyncio.to_thread(process.wait, 20)
            took = time.monotonic() - signalled
            stopping.set()
            await asyncio.gather(*readers)

            codes = []
            for ws in sockets:
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except websockets.ConnectionClosed as closed:
                    codes.append(closed.rcvd.code if closed.rcvd else None)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    text = log.read_text()
    assert served_before > 10, f"there was no load: {served_before} answers\n{text}"
    assert status == 0, f"exit status {status}\n{text}"
    assert took < 3 + 3, f"stopped after {took:.1f} s"
    assert codes == [1012] * len(sockets), codes
    wrong = [(s, t) for s, t in answers if not (s in (200, 503) and t.startswith("application/"))]
    assert not wrong, wrong[:5]
    assert "Traceback" not in text, text
