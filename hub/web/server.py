"""How a hub process is served: uvicorn's configuration built from the hub's settings, in one place.

``nrhub serve`` and the tests' ``serving_hub`` both build their server here, so the tests run the
timeouts, the connection cap and the shutdown that production runs (nrhub.web.connection_guard).

The connection cap is kept below the process's open-file limit: every connection costs a file
descriptor, and once they run out ``accept()`` fails for every new client, so the cap leaves room for
the database pools, the federated sources' connections and the process's own files.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import signal
import threading
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp
from uvicorn.server import HANDLED_SIGNALS

from nrhub.config.errors import ConfigError
from nrhub.config.settings import Settings
from nrhub.web.connection_guard import ConnectionLimits, answer_503_when_stopping, guarded_protocol
from nrhub.web.websocket_protocol import WebSocketProtocol

log = logging.getLogger("hub")
# Descriptors that are not client connections: the listening socket, standard streams and logs, the
# embedded PostgreSQL's pipes, the LISTEN connection, the issuers' JWKS client, the demo's sources.
RESERVED_DESCRIPTORS = 64


def connection_limits(settings: Settings, open_files: int | None) -> ConnectionLimits:
    """The limits from the settings (positive: hub.config.settings checks), the cap lowered to fit
    ``open_files`` (None: no limit)."""
    cap = settings.max_connections
    if open_files is not None:
        # The request pool, the owner's pool (2) and every federated source's connections in flight.
        reserved = RESERVED_DESCRIPTORS + settings.pool_max_size + 2
        reserved += sum(source.policy.max_concurrency for source in settings.sources)
        if open_files - reserved < 1:
            raise ConfigError(
                f"the open-file limit ({open_files}) leaves no room for connections after the {reserved} "
                "the hub keeps for itself: raise it (ulimit -n)"
            )
        if open_files - reserved < cap:
            cap = open_files - reserved
            log.info("accepting at most %d connections: the open-file limit is %d (ulimit -n)", cap, open_files)
    return ConnectionLimits(settings.header_timeout, settings.body_timeout, settings.write_timeout, cap)


def open_files_limit() -> int | None:
    """This process's soft limit on open files (descriptors), None when it has none."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def server_config(app: ASGIApp, settings: Settings, *, log_level: str | None = None) -> uvicorn.Config:
    """uvicorn's configuration for serving ``app`` as ``settings`` say; ``log_level`` overrides theirs."""
    protocol = guarded_protocol(connection_limits(settings, open_files_limit()))
    return uvicorn.Config(
        answer_503_when_stopping(app, protocol),
        http=protocol,
        # uvicorn's own choice for the installed websockets, freed as soon as a connection closes.
        ws=WebSocketProtocol,
        log_level=log_level or settings.log_level,
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_timeout,
        timeout_keep_alive=settings.keep_alive_timeout,
        # A WebSocket whose peer stops answering pings (gone without a FIN) is closed after one more interval.
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_interval,
        # uvicorn would take the caller's address from X-Forwarded-For whenever the peer is
        # 127.0.0.1; the hub believes it only from HUB_TRUSTED_PROXIES (auth/address.py).
        proxy_headers=False,
    )


class HubServer(uvicorn.Server):
    """uvicorn's server, which after a graceful shutdown on SIGTERM or SIGINT lets the process exit 0.

    uvicorn re-raises the signal it caught once it has shut down, so that the process dies of it: exit
    status 143 for SIGTERM (130 for SIGINT), which service managers report as a failure. The hub has
    stopped as asked, so it returns normally instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
