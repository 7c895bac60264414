"""The app factory: routes, middleware and the lifespan that owns the pool.

Middleware, outermost first: the request id (nrhub.web.request_id: every response carries X-Request-Id),
the request's one deadline and the 503 for a database out of reach (nrhub.web.deadline), then the one
body limit (auth.body_limit: HUB_MAX_BODY_BYTES for every route).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from nrhub.auth.anonymous import PublicReader
from nrhub.auth.body_limit import BodyLimit
from nrhub.auth.external import ExternalIssuer
from nrhub.auth.graphiql_client import ensure_graphiql_client
from nrhub.auth.keys import KeyStore
from nrhub.auth.outage import OUTAGE
from nrhub.auth.principal import Principal
from nrhub.auth.resource import Authenticator
from nrhub.auth.secrets import warm_hashing
from nrhub.auth.server import AuthorizationServer, ServerSettings
from nrhub.config.settings import Settings
from nrhub.config.sources import open_registry
from nrhub.db.migrate import MigrationError, pending_migrations
from nrhub.db.pools import close_pool, create_owner_pool, create_pool, listening_connection
from nrhub.resolvers.events import EventHub
from nrhub.resolvers.federated_indicators import FederatedIndicators
from nrhub.resolvers.sources.registry import SourceRegistry
from nrhub.scheduler import scheduler_for
from nrhub.schema.context import ContextFactory
from nrhub.schema.execution import Executor
from nrhub.schema.limits import Limits
from nrhub.web.bulk_http import upload_values
from nrhub.web.deadline import RequestDeadline
from nrhub.web.graphql_http import GraphQLEndpoint, read_headers
from nrhub.web.request_id import RequestId
from nrhub.web.ws import Connections, GraphQLWebSocket

log = logging.getLogger("hub")
READY_WITHIN = 2.0  # seconds /readyz waits for the database before it answers 503
_AUTHORIZATION = frozenset((b"authorization",))

Authenticate = Callable[[Request], Awaitable[Principal]]


@dataclass
class HubState:
    """What the lifespan opens and every request shares."""

    settings: Settings
    pool: asyncpg.Pool  # requests: logged in as the request role (hub/db/pools.py)
    owner: asyncpg.Pool  # signing keys, the GraphiQL client, the migration ledger: never a request's SQL
    authenticator: Authenticator
    oauth: AuthorizationServer
    events: EventHub
    connections: Connections
    contexts: ContextFactory  # every transport's per-request Context (schema.context)
    sources: SourceRegistry | None = None  # federated sources (hub/config/sources.py)
    federated: FederatedIndicators | None = None  # which indicators those sources serve


def create_app(
    settings: Settings,
    database_url: str,
    *,
    authenticate: Authenticate | None = None,
    clock: Callable[[], datetime] | None = None,
    after_start: Callable[[], object] | None = None,
) -> Starlette:
    """Build the ASGI app; the pool opens in the lifespan, so building is cheap and side-effect free.

    ``authenticate`` turns a request into a Principal; by default the bearer token is verified
    (auth.resource), and a request without one is anonymous (auth.anonymous). ``after_start`` runs
    once everything has started, before the first request.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, HubState]]:
        owner = await create_owner_pool(database_url)
        pool = await create_pool(settings, database_url)
        await warm_hashing()  # the memory sign-ins will hold, taken now (auth/secrets.py)
        if settings.graphiql:
            await ensure_graphiql_client(owner, settings.issuer_url)
        keys = KeyStore(owner)  # the request role may not read private keys (migration 0012)
        public = PublicReader(pool, enabled=settings.public_read)
        # One HTTP client for the trusted issuers' JWKS, closed with the app.
        jwks_http = httpx.AsyncClient(follow_redirects=False)
        trusted = [ExternalIssuer(config, jwks_http) for config in settings.trusted_issuers]
        authenticator = Authenticator(
            pool, keys, public, issuer=settings.issuer_url, audience=settings.audience_id, trusted=trusted
        )
        oauth = AuthorizationServer(
            pool,
            keys,
            ServerSettings(
                settings.issuer_url,
                settings.audience_id,
                settings.token_lifetime,
                settings.token_rate_limit,
                settings.trusted_proxies,
            ),
        )
        # One dedicated LISTEN connection per process (request connections never LISTEN).
        federated = FederatedIndicators(pool)
        events = EventHub(lambda: listening_connection(database_url), federated=federated)
        connections = Connections(
            pool,
            per_client=settings.ws_max_connections_per_client,
            anonymous=settings.ws_max_anonymous_connections,
        )
        await events.start()
        connections.start()
        scheduler = scheduler_for(settings, database_url, server_clock)  # reminders (nrhub.scheduler)
        if scheduler is not None:
            scheduler.start()
        # Federated sources connect on first use, so one that is down does not stop the start.
        sources = open_registry(settings.sources, database_url, execution_timeout=settings.execution_timeout)
        contexts = ContextFactory(pool, settings.max_page_size, server_clock, sources, federated, events)
        if after_start is not None:
            after_start()
        try:
            state = HubState(
                settings, pool, owner, authenticator, oauth, events, connections, contexts, sources, federated
            )
            yield {"hub": state}
        finally:
            if scheduler is not None:
                await scheduler.stop()
            await connections.stop()
            await events.stop()
            await sources.close()
            await jwks_http.aclose()
            await close_pool(pool)
            await close_pool(owner)

    async def bearer(request: Request) -> Principal:
        authorization = read_headers(request, _AUTHORIZATION).get(b"authorization")
        return await request.state.hub.authenticator.principal(authorization)

    # The server's clock: submittedAt and timeliness come from it; tests pass one they can set.
    server_clock = clock or (lambda: datetime.now(UTC))
    # Built once: validation rules and caches live as long as the app.
    executor = Executor(
        Limits(settings.max_depth, settings.max_aliases, settings.max_directives, settings.max_string_length),
        max_tokens=settings.max_tokens,
        timeout=settings.execution_timeout,
        suggestions=settings.suggestions,
        plans=settings.compiled_plans,
        introspection=settings.introspection,
        graphiql=settings.graphiql,
    )
    graphql = GraphQLEndpoint(
        executor,
        authenticate or bearer,
        suggestions=settings.suggestions,
        graphiql=_graphiql_page(settings),
    )
    websocket = GraphQLWebSocket(
        executor,
        max_subscriptions=settings.ws_max_subscriptions,
        allowed_origins=frozenset(o.strip() for o in settings.ws_allowed_origins.split(",") if o.strip()),
        own_origin=settings.issuer_url,
        init_timeout=settings.ws_init_timeout,
    )
    routes = [  # /graphql first: the router tries the routes in order on every request
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", websocket.handle),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *_oauth_routes(),
        Route("/reports/{submission_id:int}/values", upload_values, methods=["PUT"]),
        *_graphiql_routes(settings),
    ]
    middleware = [
        Middleware(RequestId),
        Middleware(RequestDeadline, seconds=settings.execution_timeout),
        Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.clock = server_clock
    return app


def _oauth_routes() -> list[Route]:
    """The authorization server's routes; its instance lives in the lifespan state."""

    def delegate(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            handler: Callable[[Request], Awaitable[Response]] = getattr(request.state.hub.oauth, name)
            return await handler(request)

        return endpoint

    return [Route(path, delegate(name), methods=[method]) for path, name, method in AuthorizationServer.ROUTES]


def _graphiql_page(settings: Settings):
    if not settings.graphiql:
        return None
    try:
        from nrhub.web.graphiql import graphiql_page
    except ImportError:
        return None
    return lambda request: graphiql_page(request, settings, subscriptions=True)


def _graphiql_routes(settings: Settings) -> list:
    if not settings.graphiql:
        return []
    try:
        from nrhub.web.graphiql import graphiql_routes
    except ImportError:
        return []
    return list(graphiql_routes(settings))


async def healthz(request: Request) -> JSONResponse:
    """The process is alive and serving HTTP."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database answers, every migration is applied and the event listener listens; 503 otherwise.

    ``listener`` says whether live updates flow (resolvers.events): while it reconnects, subscribers
    hear nothing until their ``resync``.
    """
    state: HubState = request.state.hub
    listener = state.events.state()
    try:
        async with asyncio.timeout(READY_WITHIN):  # a hung database must not hang the probe
            async with state.owner.acquire(timeout=READY_WITHIN) as conn:
                pending = await pending_migrations(conn)
            if not pending:  # and the request role logs in (it cannot before the migrations)
                async with state.pool.acquire(timeout=READY_WITHIN) as conn:
                    await conn.fetchval("SELECT 1")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        OUTAGE.noticed(exc)
        return JSONResponse({"status": "unavailable", "reason": "database unreachable", "listener": listener}, 503)
    except MigrationError as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, 503)
    if pending:
        return JSONResponse({"status": "unavailable", "reason": "migrations pending", "pending": pending}, 503)
    OUTAGE.cleared()
    if listener["state"] != "listening":
        reason = "event listener reconnecting"
        return JSONResponse({"status": "unavailable", "reason": reason, "listener": listener}, 503)
    return JSONResponse({"status": "ready", "listener": listener})
