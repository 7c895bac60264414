"""The soak's subscribers: WebSocket clients that come and go, about ``target`` at a time (bench/soak.py).

Each connects over graphql-transport-ws with the token of one of the watcher clients, subscribes to
``submissionEvents``, ``observationsChanged`` or both (what its client may see), stays 5 to 60 seconds
reading what comes (events, and the ``resync: true`` event the hub sends after it lost its database),
completes its subscriptions and closes. How each one ended is counted: ``served`` when it stayed its
whole time, else the close code (and reason) or the error that ended it. Permessage-deflate is on, as
browsers negotiate it, unless the soak is told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.soak_http import Client, Tokens

SUBMISSIONS = (
    'subscription { submissionEvents(regime: "BC_KTXH_THANG") { resync type submissionId agency status onTime } }'
)
CHANGES = (
    'subscription($i: [String!]!) { observationsChanged(indicators: $i, parent: "VN", level: PROVINCE) {'
    " resync observations { indicator { code } unit { code } period value } } }"
)
CHANGED_INDICATORS = ["RETAIL", "NEW_ENT"]


@dataclass(frozen=True)
class Watcher:
    """A client whose tokens subscribers use, and what they subscribe to with it."""

    client: Client
    operations: tuple[str, ...]


def _subscribe(operation: str) -> dict[str, Any]:
    variables = {"i": CHANGED_INDICATORS} if operation == CHANGES else {}
    return {"id": uuid.uuid4().hex, "type": "subscribe", "payload": {"query": operation, "variables": variables}}


class Subscribers:
    """Keeps about ``target`` subscribers connected until ``stop``, each for ``stay`` seconds."""

    def __init__(
        self,
        url: str,
        tokens: Tokens,
        watchers: list[Watcher],
        *,
        target: int,
        stay: tuple[float, float],
        seed: int,
        compression: bool = True,
    ) -> None:
        self.compression = "deflate" if compression else None
        self.url = url.replace("http://", "ws://") + "/graphql"
        self.tokens, self.watchers, self.target, self.stay = tokens, watchers, target, stay
        self.rng = random.Random(seed)
        self.stop = asyncio.Event()
        self.outcomes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # graphql-transport-ws "error" messages, by code
        self.deliveries = 0
        self.resyncs = 0
        self.started = 0
        self.active: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while not self.stop.is_set():
            while len(self.active) < self.target and not self.stop.is_set():
                task = asyncio.create_task(self._one(self.rng.choice(self.watchers), self.rng.uniform(*self.stay)))
                self.active.add(task)
                task.add_done_callback(self.active.discard)
                self.started += 1
                await asyncio.sleep(0.05)  # not all at once: connections come and go all along
            await asyncio.sleep(0.2)
        if self.active:
            await asyncio.wait(set(self.active), timeout=30)

    async def _one(self, watcher: Watcher, stay: float) -> None:
        outcome = await self._outcome(watcher, stay)
        self.outcomes[outcome] += 1
        if outcome != "served" and not self.stop.is_set():
            # A client told to retry in a few seconds (or cut off) waits before it comes back; its seat with it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.rng.uniform(1, 5))

    async def _outcome(self, watcher: Watcher, stay: float) -> str:
        token = await self.tokens.get(watcher.client, within=10)
        if token is None:
            return "no token"
        phase = ["connecting"]  # where it ended, when it did not end served
        try:
            async with asyncio.timeout(stay + 30):
                return await self._session(watcher, token, stay, phase)
        except ConnectionClosed as closed:
            code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "no close frame")
            return f"closed {phase[0]}: {code} {reason[:60]}".rstrip()
        except TimeoutError:
            return f"timeout {phase[0]}"
        except (OSError, InvalidHandshake) as exc:
            return f"{type(exc).__name__} {phase[0]}"

    async def _session(self, watcher: Watcher, token: str, stay: float, phase: list[str]) -> str:
        async with websockets.connect(
            self.url,
            subprotocols=["graphql-transport-ws"],
            compression=self.compression,
            open_timeout=10,
            close_timeout=5,
        ) as ws:
            phase[0] = "at connection_init"
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if ack.get("type") != "connection_ack":
                return f"no ack: {ack.get('type')}"
            phase[0] = "while subscribed"
            subscriptions = [_subscribe(op) for op in watcher.operations]
            for message in subscriptions:
                await ws.send(json.dumps(message))
            leave_at = time.monotonic() + stay
            while not self.stop.is_set() and (left := leave_at - time.monotonic()) > 0:
                try:
                    raw = await asyncio.wait_for(ws.recv(), min(left, 1.0))
                except TimeoutError:
                    continue
                await self._read(ws, json.loads(raw))
            for message in subscriptions:
                await ws.send(json.dumps({"id": message["id"], "type": "complete"}))
        return "served"

    async def _read(self, ws: websockets.ClientConnection, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "next":
            data = (message.get("payload") or {}).get("data") or {}
            event = next(iter(data.values()), None) or {}
            if event.get("resync"):
                self.resyncs += 1
            else:
                self.deliveries += 1
        elif kind == "error":
            payload = message.get("payload") or [{}]
            self.errors[str((payload[0].get("extensions") or {}).get("code", "no code"))] += 1
        elif kind == "ping":
            await ws.send(json.dumps({"type": "pong"}))
