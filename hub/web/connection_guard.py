"""Timeouts and a cap on the HTTP connections one hub process holds: what uvicorn does not do itself.

uvicorn closes a kept-alive connection left idle after an answer, and nothing else: a client that opens
a connection and sends nothing, sends its head a byte at a time (slow loris), stops halfway through a
body, or never reads its answer holds a socket, and a file descriptor, for as long as it likes. Enough
of them and ``accept()`` fails for everyone, silently. :class:`GuardedHttpProtocol` is uvicorn's
httptools protocol with these timers on each connection:

- **head**: from the connection's opening (or, on a kept-alive connection, from a request's first byte)
  to the request's last header: ``header_timeout``; then 408 if part of a head came, else a silent close;
- **body**: between two chunks of a request body, while the hub is reading it: ``body_timeout``;
  then 408 if nothing was answered yet, and the connection is closed;
- **write**: while bytes wait that the kernel will not take, because the client does not read:
  ``write_timeout``; then the connection is aborted (a close would wait for the unread bytes forever);
- **keep-alive**: uvicorn's own ``timeout_keep_alive``, after each answer.

Once upgraded to a WebSocket, a connection belongs to uvicorn's WebSocket protocol, whose pings close
a dead peer (nrhub.web.server sets them); none of these timers follow it.

Past ``max_connections`` open connections (HTTP and WebSocket), a new connection is answered 503 with
``Retry-After`` at once and closed, without reading it, so it costs its descriptor for a moment only.
One warning is logged when refusing starts and one line when it ends (once the count is back under
nine tenths of the cap), never one per connection.

At the graceful-shutdown limit uvicorn cancels the requests still running and answers those that had
not started an answer with a plain-text 500; :func:`answer_503_when_stopping` answers them 503 instead.

The protocol reaches into uvicorn's (its request cycle, flow control and parser callbacks), so an upgrade
of uvicorn that changes them fails tests/faults/test_slow_clients.py, which exercises each timer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger("hub")
RETRY_AFTER = b"1"  # seconds: a refused or stopping process is worth asking again soon (another may answer)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The per-connection timeouts (seconds) and the process's connection cap (nrhub.web.server builds it)."""

    header_timeout: float
    body_timeout: float
    write_timeout: float
    max_connections: int


def error_body(message: str, code: str) -> bytes:
    """An answer's body in the GraphQL error shape every hub route uses."""
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()


def _raw_answer(status: bytes, message: str, code: str, *extra_headers: bytes) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, written before (or instead of) any request."""
    body = error_body(message, code)
    head = [b"HTTP/1.1 " + status, b"content-type: application/json", b"content-length: %d" % len(body)]
    return b"\r\n".join([*head, *extra_headers, b"connection: close", b"", body])


AT_CAPACITY = _raw_answer(
    b"503 Service Unavailable",
    "the server has too many open connections",
    "SOURCE_UNAVAILABLE",
    b"retry-after: " + RETRY_AFTER,
)
TOO_SLOW = _raw_answer(b"408 Request Timeout", "the request did not arrive in time", "BAD_USER_INPUT")


class ServerGuard:
    """What one server's connections share: their limits, the refusals past the cap, whether it is stopping.

    Refusals are counted so that an episode is logged once, not once per connection.
    """

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.resume_at = limits.max_connections * 9 // 10  # hysteresis: a count hovering at the cap is one episode
        self.refused = 0
        self.stopping = False  # uvicorn has begun its graceful shutdown

    def admits(self, open_connections: int) -> bool:
        """Whether a new connection may join the ``open_connections`` already open."""
        if open_connections < self.limits.max_connections:
            if self.refused and open_connections <= self.resume_at:
                log.info("accepting connections again, after refusing %d past the cap", self.refused)
                self.refused = 0
            return True
        if not self.refused:
            log.warning(
                "%d connections open: refusing new ones with 503 until some close (setting max_connections)",
                open_connections,
            )
        self.refused += 1
        return False


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head, body and write timeouts and a connection cap.

    Use :func:`guarded_protocol` for a subclass bound to one server's limits and cap.
    """

    guard: ClassVar[ServerGuard]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.read_timer: asyncio.TimerHandle | None = None  # head or body, never both
        self.write_timer: asyncio.TimerHandle | None = None
        self.head_started = False
        self.last_body_at = 0.0
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self.guard.admits(len(self.connections)):
            self.refused = True
            self.transport = transport
            transport.write(AT_CAPACITY)
            transport.close()
            return
        super().connection_made(transport)
        # Pause writing (and start the write timer) as soon as the kernel takes less than it is given,
        # not past uvicorn's 64 KiB: else an answer's unread tail under that mark keeps a closing
        # connection open for ever, a close waiting for bytes the client never reads.
        transport.set_write_buffer_limits(high=0)
        self._arm_read(self.guard.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read()
        self._disarm_write()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.refused:
            super().data_received(data)

    def handle_websocket_upgrade(self) -> None:
        self.transport.set_write_buffer_limits()  # the WebSocket protocol gets the transport as uvicorn sets it
        super().handle_websocket_upgrade()
        # The parser holds this protocol's bound methods and this protocol holds the parser: uvicorn breaks
        # that cycle in connection_lost, which an upgraded connection's HTTP protocol never gets. Broken
        # here, the protocol (and the transport it holds) is freed with the connection, not by a full pass
        # of the cyclic collector (rare in a serving process, nrhub.web.collector).
        self.parser = None  # type: ignore[assignment]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_started = True
        if self.read_timer is None:  # the first request's head is timed from the connection's opening
            self._arm_read(self.guard.limits.header_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._disarm_read()
        self.head_started = False
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self.last_body_at = self.loop.time()
            self._arm_read(self.guard.limits.body_timeout, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self.last_body_at = self.loop.time()  # the timer checks this when it fires: no re-arming per chunk

    def on_message_complete(self) -> None:
        self._disarm_read()
        super().on_message_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.write_timer is None:
            self.write_timer = self.loop.call_later(self.guard.limits.write_timeout, self._write_timed_out)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._disarm_write()

    def shutdown(self) -> None:
        self.guard.stopping = True
        super().shutdown()

    def _head_timed_out(self) -> None:
        self.read_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request's head is late while the one before it is still being answered:
            # finish that answer, then close.
            self.cycle.keep_alive = False
            return
        self._give_up(TOO_SLOW if self.head_started else b"")

    def _body_timed_out(self) -> None:
        self.read_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.response_complete:
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the hub stopped reading (its buffer is full): the pause is not the client's
            self.last_body_at = now
        remaining = self.last_body_at + self.guard.limits.body_timeout - now
        if remaining > 0:
            self._arm_read(remaining, self._body_timed_out)
            return
        answer = b"" if cycle.response_started else TOO_SLOW
        # The app sees the client gone (http.disconnect) and its own answer goes nowhere.
        cycle.disconnected = True
        cycle.message_event.set()
        self._give_up(answer)

    def _write_timed_out(self) -> None:
        self.write_timer = None
        self.transport.abort()

    def _give_up(self, answer: bytes) -> None:
        if self.transport.is_closing():
            return
        if answer:
            self.transport.write(answer)
        self.transport.close()

    def _arm_read(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm_read()
        self.read_timer = self.loop.call_later(delay, callback)

    def _disarm_read(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _disarm_write(self) -> None:
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """A protocol class for one server (``uvicorn.Config(http=...)``), with a guard of its own."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"guard": ServerGuard(limits)})


def answer_503_when_stopping(app: ASGIApp, protocol: type[GuardedHttpProtocol]) -> ASGIApp:
    """``app``, whose requests cancelled at the graceful-shutdown limit are answered 503, not uvicorn's 500.

    uvicorn cancels the requests still running when its graceful shutdown times out, and answers any
    that had not started an answer with a plain-text 500 ("Internal Server Error") after logging the
    cancellation as a crash. The request did nothing wrong: it is answered 503 with ``Retry-After``
    (another process, or this one restarted, will take it), and the cancellation ends here quietly.
    """

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, watched_send)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not protocol.guard.stopping or task is None:
                raise
            task.uncancel()  # the task ends here, answered: nothing above it waits for the cancellation
            if not started:
                body = error_body("the server is shutting down", "SOURCE_UNAVAILABLE")
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                    (b"retry-after", RETRY_AFTER),
                    (b"connection", b"close"),
                ]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body})

    return guarded
