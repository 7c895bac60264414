"""What the request time limit costs: ``asyncio.timeout`` beside the hand-written scheduler it replaced.

Until issue 17 the hub ran each request under ``schema/time_limit.py``'s ``Deadlines``: one timer
per event loop cancelling overdue requests every 50 ms, written because ``asyncio.timeout`` arms and
cancels a timer per request. This measures the three ways one request's body can run, interleaved
in rounds in one process so drift touches all alike:

- ``none``: the body alone (an ``await asyncio.sleep(0)``: one turn of the loop, as a request has);
- ``asyncio``: the body under ``asyncio.timeout`` (the hub's way now);
- ``deadlines``: the body under the old scheduler, read from git (``--rev``, default the last commit
  that had it).

It prints microseconds per run (the median of the rounds) and what each limit adds over ``none``,
as a share of a point lookup's CPU: 57 us, the Starlette anchor's (the least a lookup costs in
Python here), and 400 us, about the least the hub's has been (bench/README.md)::

    .venv/bin/python -m bench.time_limit            # uvloop, as the hub serves
    .venv/bin/python -m bench.time_limit --loop asyncio
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ANCHOR_POINT_US = 57.0  # the Starlette anchor's CPU per point lookup (bench/README.md, ninth run)
HUB_POINT_US = 400.0  # the hub's CPU per point lookup, about its least (bench/README.md)
ROOT = Path(__file__).resolve().parent.parent


def old_scheduler(rev: str) -> Any:
    """The ``Deadlines`` class of ``schema/time_limit.py`` at ``rev``."""
    source = subprocess.run(
        ["git", "show", f"{rev}:schema/time_limit.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType("old_time_limit")
    exec(compile(source, "old_time_limit.py", "exec"), module.__dict__)
    return module.Deadlines


async def body() -> None:
    await asyncio.sleep(0)


async def run_none() -> None:
    await body()


async def run_asyncio() -> None:
    async with asyncio.timeout(10.0):
        await body()


def make_run_deadlines(deadlines_class: Any) -> Callable[[], Awaitable[None]]:
    deadlines = deadlines_class(10.0)

    async def run_deadlines() -> None:
        with deadlines.limit():
            await body()

    return run_deadlines


async def time_per_run(run: Callable[[], Awaitable[None]], count: int) -> float:
    """Microseconds per run, ``count`` runs one after another in this task."""
    started = time.perf_counter()
    for _ in range(count):
        await run()
    return (time.perf_counter() - started) / count * 1e6


async def measure(rev: str, rounds: int, count: int) -> dict[str, float]:
    runs = {"none": run_none, "asyncio": run_asyncio, "deadlines": make_run_deadlines(old_scheduler(rev))}
    for run in runs.values():
        await time_per_run(run, count // 10)  # warm up
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(rounds):
        names = list(runs)
        names = names[i % len(names) :] + names[: i % len(names)]  # the first to run rotates
        for name in names:
            samples[name].append(await time_per_run(runs[name], count))
    return {name: statistics.median(values) for name, values in samples.items()}


def report(medians: dict[str, float], loop: str) -> None:
    base = medians["none"]
    print(f"loop: {loop}; median of rounds, microseconds per run")
    for name, us in medians.items():
        added = us - base
        print(f"  {name:9} {us:7.3f} us   adds {added:6.3f} us")
    added_asyncio, added_deadlines = medians["asyncio"] - base, medians["deadlines"] - base
    print(f"  asyncio/deadlines per run: {medians['asyncio'] / medians['deadlines']:.3f}x")
    more = added_asyncio - added_deadlines
    print(
        f"  asyncio.timeout costs {more:+.3f} us a request more than the scheduler: {more / ANCHOR_POINT_US:+.2%} "
        f"of the anchor's point lookup, {more / HUB_POINT_US:+.2%} of the hub's"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="9eff736", help="git revision whose schema/time_limit.py is the old scheduler")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--count", type=int, default=20_000, help="runs per target per round")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        medians = uvloop.run(measure(args.rev, args.rounds, args.count))
    else:
        medians = asyncio.run(measure(args.rev, args.rounds, args.count))
    report(medians, args.loop)


if __name__ == "__main__":
    main()
