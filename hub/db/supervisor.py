"""Keeps the embedded PostgreSQL running while a process holds it.

``nrhub serve`` holds the server for hours; if the postmaster dies under it (killed, out of memory), the
hub keeps answering ``/healthz`` and ``/readyz`` says 503 for as long as nobody restarts PostgreSQL. So
every holding process runs a thread that looks at the postmaster once a second and, when it is gone,
restarts it under the folder's lock: with two holders, the second to get the lock finds it running
again and does nothing. Restarts that fail are retried after a delay that doubles up to a bound, each
failure said in one log line. The hub's pools reconnect by themselves, to the same socket.
"""

from __future__ import annotations

import logging
import threading

from nrhub.db.cluster import Cluster
from nrhub.db.embedded_errors import EmbeddedStartError
from nrhub.db.handles import HandleRegistry

CHECK_EVERY = 1.0  # seconds
MAX_BACKOFF = 30.0

log = logging.getLogger("hub.embedded")


class Supervisor:
    """A daemon thread that restarts ``cluster``'s server when it dies, until :meth:`stop`."""

    def __init__(self, cluster: Cluster, registry: HandleRegistry) -> None:
        self._cluster = cluster
        self._registry = registry
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="embedded-postgres-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; waits for a restart under way to finish, so the caller may stop the server."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        delay, failures = CHECK_EVERY, 0
        while not self._stopping.wait(delay):
            try:
                if self._cluster.running() is None:
                    self._restart()
                delay, failures = CHECK_EVERY, 0
            except (EmbeddedStartError, OSError) as exc:
                failures += 1
                delay = min(CHECK_EVERY * 2**failures, MAX_BACKOFF)
                log.warning("the embedded PostgreSQL is down and did not restart (%s); next try in %.0f s", exc, delay)

    def _restart(self) -> None:
        with self._registry.locked():
            if self._stopping.is_set():  # leaving: the server is no longer ours to keep
                return
            running = self._cluster.ensure_running()
        if running.started:
            log.warning(
                "the embedded PostgreSQL of %s had stopped; restarted it (postmaster PID %d)",
                self._cluster.pgdata,
                running.postmaster.pid,
            )
