"""The app factory: routes, middleware and the lifespan that owns the pool."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.database import create_pool
from hub.migrate import MigrationError, pending_migrations
from hub.settings import Settings

log = logging.getLogger("hub")


@dataclass
class HubState:
    """What the lifespan opens and every request shares."""

    settings: Settings
    pool: asyncpg.Pool


def create_app(settings: Settings, database_url: str) -> Starlette:
    """Build the ASGI app; the pool opens in the lifespan, so building is cheap and side-effect free."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, HubState]]:
        pool = await create_pool(settings, database_url)
        try:
            yield {"hub": HubState(settings=settings, pool=pool)}
        finally:
            await pool.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def healthz(request: Request) -> JSONResponse:
    """The process is alive and serving HTTP."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database answers and every migration is applied; 503 otherwise."""
    state: HubState = request.state.hub
    try:
        async with state.pool.acquire(timeout=2) as conn:
            pending = await pending_migrations(conn)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        log.warning("readiness: database unreachable: %s", exc)
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, 503)
    except MigrationError as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, 503)
    if pending:
        return JSONResponse(
            {"status": "unavailable", "reason": "migrations pending", "pending": pending}, 503
        )
    return JSONResponse({"status": "ready"})
