"""GraphQL over WebSocket, the graphql-transport-ws protocol only, on /graphql.

Close codes (the protocol's): 4400 bad message, 4401 subscribe before the connection was
acknowledged, 4403 token refused, expired, revoked or its client disabled, 4408 no
connection_init in time, 4409 a subscription id reused, 4429 a second connection_init or too many
connections for one client; 1008 a subscriber too slow for its events. The token travels in the
connection_init payload as ``Authorization: Bearer …`` and is verified as on HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import orjson
from graphql import ExecutionResult, GraphQLError, OperationType
from starlette.websockets import WebSocket, WebSocketDisconnect

from nrhub.auth.address import parse_proxies, request_address
from nrhub.auth.outage import OUTAGE, database_down
from nrhub.auth.principal import Principal
from nrhub.auth.resource import Authenticator, Unauthorized
from nrhub.resolvers.errors import HubError
from nrhub.resolvers.events import EventHub, SubscriberTooSlow
from nrhub.schema.context import Context, ContextFactory
from nrhub.schema.execution import Executor, format_error
from nrhub.web.event_stream import SharedResponses, sharing_key, subscribe
from nrhub.web.request_id import request_id_of

PROTOCOL = "graphql-transport-ws"
log = logging.getLogger("hub.ws")

# Cut-off checks: revoked tokens and disabled clients or accounts, for every open connection at once.
_SELECT_CUT_OFF = """
SELECT c.key FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS c(key, jti, client_id, username)
WHERE EXISTS (SELECT 1 FROM revoked_token r WHERE r.jti = c.jti)
   OR EXISTS (SELECT 1 FROM oauth_client o WHERE o.client_id = c.client_id AND o.disabled)
   OR EXISTS (SELECT 1 FROM hub_user u WHERE u.username = c.username AND u.disabled)
"""


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Connections:
    """Open connections of this process: per-client caps, and the periodic cut-off of revoked tokens."""

    def __init__(self, pool: asyncpg.Pool, *, per_client: int, anonymous: int, check_every: float = 2.0) -> None:
        self._pool = pool
        self._per_client = per_client
        self._anonymous = anonymous
        self._check_every = check_every
        self._open: dict[str, tuple[str, Principal, Callable[[int, str], Any]]] = {}
        self._clients: Counter[str] = Counter()
        self._anonymous_open = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="ws-cut-off")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def add(self, key: str, principal: Principal, peer: str, close: Callable[[int, str], Any]) -> None:
        # Anonymous callers have no client to count against: each address gets the cap of one client,
        # and all of them together a ceiling of their own, since one host can hold many addresses (an
        # IPv6 /64). Callers with a token are never refused for what anonymous callers hold.
        anonymous = principal.client_id is None
        client = f"anonymous {peer}" if anonymous else principal.client_id
        if self._clients[client] >= self._per_client:
            raise _Closed(4429, f"at most {self._per_client} connections per client")
        if anonymous and self._anonymous_open >= self._anonymous:
            raise _Closed(4429, f"at most {self._anonymous} anonymous connections; connect with a token")
        self._clients[client] += 1
        self._anonymous_open += anonymous
        self._open[key] = (client, principal, close)

    def remove(self, key: str) -> None:
        entry = self._open.pop(key, None)
        if entry:
            self._clients[entry[0]] -= 1
            self._anonymous_open -= entry[1].client_id is None
            if not self._clients[entry[0]]:
                del self._clients[entry[0]]  # addresses come and go: keep no count for those gone

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._check_every)
            try:
                await self._cut_off()  # a call of its own: its snapshot of principals is not kept while sleeping
            except Exception:
                # Whatever one check meets, the next one runs: a watcher that died would leave revoked
                # tokens connected for good (the soak's hour met asyncpg's InternalClientError here).
                log.exception(
                    "the revocation check of open connections failed; it runs again in %g s", self._check_every
                )

    async def _cut_off(self) -> None:
        tracked = [(k, p) for k, (_, p, _) in self._open.items() if p.client_id]
        if not tracked:
            return
        try:
            rows = await self._pool.fetch(
                _SELECT_CUT_OFF,
                [k for k, _ in tracked],
                [p.token_id or "" for _, p in tracked],
                [p.client_id for _, p in tracked],
                [p.user or "" for _, p in tracked],
            )
        except Exception as exc:
            if not database_down(exc):
                raise
            log.warning("cannot check open connections for revocation: %s", exc)
            return
        for row in rows:
            entry = self._open.get(row["key"])
            if entry:
                await entry[2](4403, "Forbidden: the token was revoked or its client disabled")


class GraphQLWebSocket:
    def __init__(
        self,
        executor: Executor,
        *,
        max_subscriptions: int,
        allowed_origins: frozenset[str],
        own_origin: str,
        init_timeout: float,
    ) -> None:
        self.executor = executor
        self.max_subscriptions = max_subscriptions
        self.allowed_origins = allowed_origins | {own_origin}
        self.init_timeout = init_timeout
        self.responses = SharedResponses()

    async def handle(self, websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        # Browsers send Origin; a page of another site may not open a socket with the user's token.
        if origin is not None and origin not in self.allowed_origins:
            await websocket.close(code=1008, reason="origin not allowed")
            return
        if PROTOCOL not in websocket.scope.get("subprotocols", []):
            await websocket.close(code=1002, reason=f"only the {PROTOCOL} subprotocol is served")
            return
        await websocket.accept(subprotocol=PROTOCOL)
        await _Session(self, websocket).run()


class _Session:
    def __init__(self, endpoint: GraphQLWebSocket, websocket: WebSocket) -> None:
        self.endpoint = endpoint
        self.ws = websocket
        self.state = websocket.state.hub
        self.contexts: ContextFactory = self.state.contexts
        self.key = uuid.uuid4().hex  # the connection's, for the per-client counts and the cut-off
        # The handshake's X-Request-Id (nrhub.web.request_id): the correlation id of everything said on it.
        self.request_id = request_id_of(websocket.scope)
        self.principal: Principal | None = None
        self.context: Context | None = None
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()
        self.closed = asyncio.Event()
        self.close_code = 1000

    async def run(self) -> None:
        connections: Connections = self.state.connections
        timers = [asyncio.create_task(self._init_deadline())]
        try:
            while not self.closed.is_set():
                try:
                    text = await self._next_text()
                    if text is not None:
                        await self._handle(text, timers)
                except _Closed as exc:
                    await self.close(exc.code, exc.reason)
                except Exception as exc:
                    if not database_down(exc):
                        raise
                    # connection_init could not check the token: say so with a close frame (RFC 6455's
                    # 1013, Try Again Later), not a dropped connection.
                    OUTAGE.noticed(exc)
                    await self.close(1013, "the hub's database is unavailable; retry in a few seconds")
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            for task in [*timers, *self.operations.values()]:
                task.cancel()
            connections.remove(self.key)

    async def close(self, code: int, reason: str) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, reason=reason)

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            if self.closed.is_set():
                return
            try:
                await self.ws.send_text(orjson.dumps(message).decode())
            except (RuntimeError, WebSocketDisconnect, OSError):
                # The transport already ended (the peer left, or keepalive gave up): stop quietly.
                self.closed.set()

    async def _next_text(self) -> str | None:
        """The next message, or None once the session is closed; WebSocketDisconnect when the peer left."""
        receive = asyncio.create_task(self._receive_text())
        closing = asyncio.create_task(self.closed.wait())
        try:
            await asyncio.wait({receive, closing}, return_when=asyncio.FIRST_COMPLETED)
            return receive.result() if receive.done() else None
        finally:
            closing.cancel()
            receive.cancel()
            # receive.result() raises the task's exception with this frame in its traceback, and this
            # frame holds the task, which holds the exception: a cycle that keeps the whole session, its
            # socket's compression contexts with it, until a full pass of the cyclic collector, rare in a
            # serving process (nrhub.web.collector). Without the task here, reference counting frees it.
            del receive, closing

    async def _receive_text(self) -> str:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("text") is None:
            raise _Closed(4400, "binary frames are not graphql-transport-ws messages")
        return str(message["text"])

    async def _init_deadline(self) -> None:
        await asyncio.sleep(self.endpoint.init_timeout)
        if self.principal is None:
            await self.close(4408, "Connection initialisation timeout")

    async def _handle(self, text: str, timers: list[asyncio.Task[None]]) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _Closed(4400, "the message is not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise _Closed(4400, "the message has no type")
        kind = message["type"]
        if kind == "connection_init":
            await self._init(message.get("payload"), timers)
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            return
        elif kind == "subscribe":
            await self._subscribe(message)
        elif kind == "complete":
            task = self.operations.pop(str(message.get("id")), None)
            if task:
                task.cancel()
        else:
            raise _Closed(4400, f"unknown message type {kind!r}")

    async def _init(self, payload: Any, timers: list[asyncio.Task[None]]) -> None:
        if self.principal is not None:
            raise _Closed(4429, "Too many initialisation requests")
        authorization = None
        if isinstance(payload, dict):
            authorization = payload.get("Authorization") or payload.get("authorization")
        authenticator: Authenticator = self.state.authenticator
        try:
            principal = await authenticator.principal(authorization if isinstance(authorization, str) else None)
        except Unauthorized as exc:
            raise _Closed(4403, f"Forbidden: {exc.description}") from None
        # The per-address limit counts the caller, not a proxy: X-Forwarded-For only from HUB_TRUSTED_PROXIES.
        peer = request_address(self.ws, parse_proxies(self.state.settings.trusted_proxies))
        self.state.connections.add(self.key, principal, peer, self.close)
        self.principal = principal
        self.context = await self.contexts.open(principal, self.request_id, live=True)
        if principal.token_expires_at is not None:
            timers.append(asyncio.create_task(self._expire_at(principal.token_expires_at)))
        await self.send({"type": "connection_ack"})

    async def _expire_at(self, expires_at: int) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await self.close(4403, "Forbidden: the token expired")

    async def _subscribe(self, message: dict[str, Any]) -> None:
        if self.principal is None or self.context is None:
            raise _Closed(4401, "Unauthorized")
        op_id, payload = message.get("id"), message.get("payload")
        if not isinstance(op_id, str) or not op_id or not isinstance(payload, dict):
            raise _Closed(4400, "subscribe needs an id and a payload")
        if op_id in self.operations:
            raise _Closed(4409, f"Subscriber for {op_id} already exists")
        if len(self.operations) >= self.endpoint.max_subscriptions:
            await self._error(
                op_id,
                GraphQLError(
                    f"at most {self.endpoint.max_subscriptions} subscriptions per connection",
                    extensions={"code": "RATE_LIMITED"},
                ),
            )
            return
        query, variables = payload.get("query"), payload.get("variables")
        if not isinstance(query, str) or (variables is not None and not isinstance(variables, dict)):
            raise _Closed(4400, "the payload needs a query string (and variables as an object)")
        operation_name = payload.get("operationName")
        executor = self.endpoint.executor
        prepared = executor.prepare(query, operation_name, introspection=executor.may_see_schema(self.principal))
        problem = self.endpoint.executor.check_variables(variables)
        if prepared.errors or problem:
            await self._error(op_id, *(prepared.errors or [problem]))
            return
        assert prepared.document is not None
        # Each operation gets its own loaders and error list; the connection's principal and scope stay.
        context = self.contexts.for_operation(self.context)
        if prepared.operation is OperationType.SUBSCRIPTION:
            key = sharing_key(query, operation_name, variables, context)
            outcome = subscribe(
                prepared.document,
                context,
                variables,
                operation_name,
                responses=self.endpoint.responses,
                key=key,
            )
        else:
            # The executor, as over HTTP: its time limit, its compiled plans, and the errors a field
            # reports beside its value (a denied code in a list argument), which execute() alone drops.
            outcome = self.endpoint.executor.run(prepared, variables, operation_name, context)
        self.operations[op_id] = asyncio.create_task(self._stream(op_id, outcome))

    async def _stream(self, op_id: str, outcome: Any) -> None:
        try:
            if asyncio.iscoroutine(outcome) or isinstance(outcome, asyncio.Future):
                outcome = await outcome
            if isinstance(outcome, ExecutionResult):
                if outcome.data is None and outcome.errors:
                    await self._error(op_id, *outcome.errors)
                    return
                await self.send({"id": op_id, "type": "next", "payload": self._format(outcome)})
            else:
                await self._forward(op_id, outcome)
            await self.send({"id": op_id, "type": "complete"})
        except SubscriberTooSlow as exc:
            await self.close(1008, str(exc)[:120])
        except HubError as exc:  # raised by the subscription itself, e.g. FORBIDDEN at subscribe time
            await self._error(op_id, GraphQLError(exc.message, original_error=exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the protocol's last word on an operation; details go to the log only
            if self.closed.is_set():
                return  # the connection is gone; nobody is left to tell
            if database_down(exc):  # SOURCE_UNAVAILABLE, logged once per incident (nrhub.schema.execution)
                await self._error(op_id, GraphQLError(str(exc), original_error=exc))
                return
            log.exception("subscription %s failed, correlation id %s", op_id, self.request_id)
            await self._error(op_id, GraphQLError("internal error", extensions={"code": "INTERNAL"}))
        finally:
            self.operations.pop(op_id, None)

    async def _forward(self, op_id: str, stream: AsyncIterator[ExecutionResult]) -> None:
        try:
            async for result in stream:
                original = next((e.original_error for e in result.errors or [] if e.original_error), None)
                if isinstance(original, SubscriberTooSlow):
                    raise original
                if result.data is None and result.errors:
                    await self._error(op_id, *result.errors)
                    return
                await self.send({"id": op_id, "type": "next", "payload": self._format(result)})
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def _format(self, result: ExecutionResult) -> dict[str, Any]:
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [format_error(e, self.request_id, suggestions=False) for e in result.errors]
        return body

    async def _error(self, op_id: str, *errors: GraphQLError) -> None:
        await self.send(
            {
                "id": op_id,
                "type": "error",
                "payload": [format_error(e, self.request_id, suggestions=False) for e in errors],
            }
        )


__all__ = ["Connections", "EventHub", "GraphQLWebSocket"]
