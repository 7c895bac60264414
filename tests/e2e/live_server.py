"""A real uvicorn server on 127.0.0.1, in a background thread, for end-to-end tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


def bound_socket() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1, for apps that must know their port when built."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def live_server(
    app: ASGIApp,
    *,
    sock: socket.socket | None = None,
    lifespan: Literal["on", "off"] = "off",
    ws: Literal["auto", "none"] = "none",
    start_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields the base URL (no trailing slash).

    ``sock``: serve on this bound socket (default: a new one on a free port). ``lifespan="on"``
    runs the app's startup (the hub's pool) in the server's thread and event loop, before the URL
    is yielded; ``ws="auto"`` accepts WebSocket connections.
    """
    sock = sock or bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan=lifespan, ws=ws, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
