"""Live events: one LISTEN connection per process, fanned out to bounded per-subscriber queues.

The workflow sends ``NOTIFY hub_events`` with keys only (resolvers.submissions). This module keeps
one dedicated connection listening (request connections never LISTEN), reconnects with back-off
after PostgreSQL restarts and then tells every subscriber to resynchronise, and hands each event to
each subscriber's queue. A subscriber whose queue is full is cut off with a reason; memory never
grows without bound. Because NOTIFY crosses processes, an event committed through one hub process
reaches subscribers on every other.

A connection can also die without a FIN or an RST (a NAT or firewall dropping it): nothing then
arrives, not even an error. A round trip every ``PING_EVERY`` seconds, bounded by ``PING_TIMEOUT``,
notices that, so subscribers hear ``resync`` within ``RESYNC_BOUND`` seconds of the death once
PostgreSQL can be reached (docs/api.md, Live updates).

Events are numbered as they arrive and the last ``REPLAY_SIZE`` are kept: a subscription started
at position ``p`` (the position when its ``subscribe`` message arrived, before the reads it does to
start) is first handed the kept events after ``p``, so an event committed while it was starting is
not lost; when the kept events no longer reach back to ``p`` it is told to ``resync`` instead.

The same connection hears the catalogue's changes (``hub_catalogue``) for the process's map of
federated indicators (resolvers.federated_indicators), and tells it when it could not hear them.

Each notification is one ``Event`` object shared by all its subscribers, so that subscribers asking
the same read of it (a thousand dashboards with one query) share one statement (``Event.read_once``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import orjson

from nrhub.auth.outage import OUTAGE
from nrhub.resolvers.federated_indicators import CATALOGUE_CHANNEL, FederatedIndicators
from nrhub.resolvers.submissions import EVENT_CHANNEL

log = logging.getLogger("hub.events")
QUEUE_SIZE = 256
REPLAY_SIZE = 1024  # events kept for subscriptions that are still starting
PING_EVERY = 1.0  # seconds between round trips on a quiet listening connection
PING_TIMEOUT = 2.0  # a round trip slower than this means the connection is dead
RESYNC_BOUND = 5.0  # documented: a silent death is followed by resync within this, PostgreSQL reachable
T = TypeVar("T")


@dataclass(eq=False)
class Event:
    """One notification, as every subscriber receives it: its keys, and the reads its subscribers share."""

    data: dict[str, Any]
    _reads: dict[Hashable, asyncio.Future[Any]] = field(default_factory=dict, repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def read_once(self, key: Hashable, read: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``read(*args)`` for this event, done once for every subscriber asking with the same key.

        The key must name everything the read depends on, the reader's grants included (for example
        the unit ids it may read); subscribers with different keys read separately. One subscriber
        leaving does not cancel a read the others wait for.
        """
        return await shared(self._reads, key, lambda: read(*args))


def shared(memo: dict[Hashable, asyncio.Future[Any]], key: Hashable, start: Callable[[], Awaitable[T]]) -> Awaitable[T]:
    """The one result for ``key`` in ``memo``: the first caller starts it, later callers wait for the same.

    A caller that is cancelled does not cancel it for the others; a failure reaches every caller.
    """
    future = memo.get(key)
    if future is None:
        future = memo[key] = asyncio.ensure_future(start())
        # Retrieved here too, so that a failure nobody waits for any more is not logged as unretrieved.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return asyncio.shield(future)


RESYNC = Event({"type": "resync"})
_OVERFLOW = Event({"type": "overflow"})


class SubscriberTooSlow(Exception):
    """The subscriber did not keep up; its queue overflowed and it was cut off."""


@dataclass(eq=False)
class Subscriber:
    """One subscription's mailbox. ``wants`` filters event payloads cheaply before they are queued."""

    wants: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False

    async def next(self) -> Event:
        if self.overflowed:
            raise SubscriberTooSlow("the subscriber did not keep up with the events; subscribe again")
        event = await self.queue.get()
        if event is _OVERFLOW:
            raise SubscriberTooSlow("the subscriber did not keep up with the events; subscribe again")
        return event


class EventHub:
    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        max_backoff: float = 5.0,
        federated: FederatedIndicators | None = None,
    ) -> None:
        self._connect = connect
        self._federated = federated
        self._max_backoff = max_backoff
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._position = 0  # how many events (resyncs included) were published
        # Payloads only: an Event holds its subscribers' reads, which must not outlive its delivery.
        self._recent: deque[tuple[int, dict[str, Any] | None]] = deque(maxlen=REPLAY_SIZE)  # None: a resync
        self._down_since: float | None = time.monotonic()  # not listening yet
        self._last_error = "not started"
        self._told = False  # whether this incident's log line was written

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="hub-events-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def position(self) -> int:
        """The number of the last event published: a subscription starting now passes it to ``subscribe``."""
        return self._position

    def state(self) -> dict[str, Any]:
        """The listener's state, as /readyz reports it."""
        if self._down_since is None:
            return {"state": "listening", "subscribers": len(self._subscribers)}
        return {
            "state": "reconnecting",
            "seconds": round(time.monotonic() - self._down_since, 1),
            "reason": self._last_error,
            "subscribers": len(self._subscribers),
        }

    @property
    def listening(self) -> bool:
        return self._down_since is None

    def subscribe(self, wants: Callable[[dict[str, Any]], bool], *, after: int | None = None) -> Subscriber:
        """A new subscriber; with ``after`` (a ``position``), first handed the events published since."""
        subscriber = Subscriber(wants)
        if after is not None and after < self._position:
            missed = [
                RESYNC if data is None else Event(data)
                for number, data in self._recent
                if number > after and (data is None or wants(data))
            ]
            oldest = self._recent[0][0] if self._recent else self._position + 1
            if oldest > after + 1 or len(missed) >= QUEUE_SIZE:
                missed = [RESYNC]  # no longer all kept, or more than its queue holds: re-read instead
            for event in missed:
                subscriber.queue.put_nowait(event)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish(self, event: Event) -> None:
        """Hand an event to every interested subscriber; cut off those that are full."""
        self._position += 1
        self._recent.append((self._position, None if event is RESYNC else event.data))
        for subscriber in list(self._subscribers):
            if event is not RESYNC and not subscriber.wants(event.data):
                continue
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._cut_off(subscriber)

    def _cut_off(self, subscriber: Subscriber) -> None:
        subscriber.overflowed = True
        self._subscribers.discard(subscriber)
        # Make room for the marker so a waiting consumer wakes up and learns why.
        with contextlib.suppress(asyncio.QueueEmpty):
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(_OVERFLOW)

    async def _listen(self) -> None:
        backoff, first = 0.1, True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = connection = await asyncio.wait_for(self._connect(), PING_TIMEOUT * 5)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await asyncio.wait_for(connection.add_listener(EVENT_CHANNEL, self._on_notify), PING_TIMEOUT)
                if (federated := self._federated) is not None:
                    await asyncio.wait_for(
                        connection.add_listener(CATALOGUE_CHANNEL, lambda *_notification: federated.forget()),
                        PING_TIMEOUT,
                    )
                    federated.listening(True)
                if self._down_since is not None and self._told:
                    log.warning("event listener listening again after %.1f s", time.monotonic() - self._down_since)
                self._down_since, self._told = None, False
                OUTAGE.cleared()  # the earliest sign that the database is back, if it was away
                self._connected.set()
                if not first:
                    # Events may have been missed while disconnected: subscribers re-read what they show.
                    self.publish(RESYNC)
                first, backoff = False, 0.1
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), PING_EVERY)
                    if not lost.is_set():
                        # A bounded round trip: a connection dropped without FIN or RST never errs by itself.
                        await asyncio.wait_for(connection.fetchval("SELECT 1"), PING_TIMEOUT)
                raise ConnectionError("the connection closed")
            except asyncio.CancelledError:
                if conn is not None:
                    conn.terminate()  # not close(): it waits for a server that may never answer
                raise
            except Exception as exc:  # whatever the connection's failure, the listener must live on and reconnect
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if not self._told:  # one line per incident, not per attempt
                    log.warning("event listener lost its connection (%s); reconnecting, then resync", reason)
                    self._told = True
                if self._down_since is None:
                    self._down_since = time.monotonic()
                self._last_error = reason
            if self._federated is not None:
                self._federated.listening(False)
            if conn is not None and not conn.is_closed():
                conn.terminate()
            self._connected.clear()
            await asyncio.sleep(backoff + random.uniform(0, backoff / 2))
            backoff = min(backoff * 2, self._max_backoff)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.error("ignoring a malformed event payload")
            return
        if isinstance(event, dict):
            self.publish(Event(event))
