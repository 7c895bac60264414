"""Timing: targets, time-sliced batches run round-robin, latency percentiles and CPU per request.

A *target* is one way of producing a query's response: the hub over HTTP, the Starlette anchor
over HTTP, or the floor in-process. Each batch (a *slice*) runs one target for a fixed time with
``concurrency`` workers, each worker sending its next request as soon as the previous one is
answered; targets take turns slice by slice (the first target rotates each round), so drift in the
machine's state (caches, other load, frequency scaling) affects all three alike.

CPU time is read from the processes themselves (psutil: user + system), so the report can say
where a request's time goes: in the application process, in PostgreSQL, or in the client.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psutil

from bench.client import Client

REQUEST_TIMEOUT = 30.0  # seconds; a slower request fails the run rather than hanging it
MAX_SAMPLES = 200_000  # latencies kept per target and cell


class BadResponse(Exception):
    """A target answered with an error status or an error body while being timed."""


@dataclass
class Target:
    """One way of answering a query; ``app`` is the process whose CPU the request spends."""

    name: str
    call: Callable[[int], Awaitable[bytes]]
    app: psutil.Process


def http_target(name: str, client: Client, path: str, body: bytes, app: psutil.Process) -> Target:
    async def call(worker: int) -> bytes:
        status, data = await client.post(worker, path, body)
        if status != 200 or not data.startswith(b'{"data"'):
            raise BadResponse(f"{name} {path}: HTTP {status}: {data[:300]!r}")
        return data

    return Target(name, call, app)


def floor_target(anchor: Callable[[], Awaitable[bytes]]) -> Target:
    async def call(worker: int) -> bytes:
        return await anchor()

    return Target("floor", call, psutil.Process())


class CpuMeter:
    """CPU seconds used by the app process, the PostgreSQL processes and the benchmark process."""

    def __init__(self, postmaster_pid: int) -> None:
        self._postmaster = psutil.Process(postmaster_pid)
        self._bench = psutil.Process()

    def _postgres(self) -> dict[int, float]:
        seconds = {}
        for proc in [self._postmaster, *self._postmaster.children()]:
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            seconds[proc.pid] = t.user + t.system
        return seconds

    def snapshot(self, app: psutil.Process) -> tuple[float, dict[int, float], float]:
        a, b = app.cpu_times(), self._bench.cpu_times()
        return a.user + a.system, self._postgres(), b.user + b.system

    def since(self, app: psutil.Process, before: tuple[float, dict[int, float], float]) -> tuple[float, float, float]:
        app_now, pg_now, bench_now = self.snapshot(app)
        app_then, pg_then, bench_then = before
        pg = sum(t - pg_then.get(pid, 0.0) for pid, t in pg_now.items())
        return app_now - app_then, pg, bench_now - bench_then


@dataclass
class Sample:
    """Everything measured for one target in one cell (query x concurrency), over all its slices."""

    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    app_cpu: float = 0.0
    pg_cpu: float = 0.0
    client_cpu: float = 0.0
    response_bytes: int = 0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def per_request_ms(self, cpu_seconds: float) -> float:
        return 1000 * cpu_seconds / self.requests


async def run_slice(target: Target, concurrency: int, seconds: float, sample: Sample, meter: CpuMeter) -> None:
    """Run ``target`` for about ``seconds`` with ``concurrency`` workers; add what it measured to ``sample``."""
    latencies: list[float] = []
    size = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal size
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with asyncio.timeout(REQUEST_TIMEOUT):
                body = await target.call(index)
            latencies.append(time.perf_counter() - started)
            size = len(body)

    before = meter.snapshot(target.app)
    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    app_cpu, pg_cpu, bench_cpu = meter.since(target.app, before)
    sample.latencies.extend(latencies[: MAX_SAMPLES - len(sample.latencies)])
    sample.requests += len(latencies)
    sample.seconds += elapsed
    sample.app_cpu += app_cpu
    sample.pg_cpu += pg_cpu
    sample.client_cpu += bench_cpu
    sample.response_bytes = size


async def warm_up(target: Target, concurrency: int, requests: int, seconds: float) -> None:
    """Send ``requests`` requests, or as many as fit in ``seconds``, and forget them.

    PostgreSQL plans a prepared statement afresh for its first five executions on each connection
    and then may switch to a cached generic plan, so every pooled connection should have run each
    statement a few times before timing starts: ``requests`` is sized for that.
    """
    sent = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal sent
        while sent < requests and time.perf_counter() < deadline:
            sent += 1
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await target.call(index)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))


async def run_cell(
    targets: list[Target], concurrency: int, seconds: float, slice_seconds: float, meter: CpuMeter
) -> dict[str, Sample]:
    """About ``seconds`` in all for the targets together, in slices taken round-robin."""
    samples = {t.name: Sample() for t in targets}
    rounds = max(1, round(seconds / (slice_seconds * len(targets))))
    for r in range(rounds):
        turn = r % len(targets)
        for target in targets[turn:] + targets[:turn]:
            await run_slice(target, concurrency, slice_seconds, samples[target.name], meter)
    return samples
