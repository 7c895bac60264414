"""What a soak found (bench/soak.py): its figures, and PASS or FAIL for each criterion of issue 18.

The criteria:

- **completed**: the run went its whole length (no hard stop, the hub never exited, setup worked);
- **restarts**: every planned PostgreSQL restart was done, and both reads and writes were acknowledged
  after the last one (the hub recovered, not merely survived);
- **writes**: every acknowledged write is present exactly as acknowledged (bench/soak_verify.py);
- **audit**: ``nrhub audit verify`` exits 0;
- **RSS flat**: after warm-up, the hub's RSS grew by no more than ``--rss-tolerance`` MiB from the warm
  sample to the last one, and the least-squares line through the samples between rises by no more than
  ``--rss-slope`` MiB an hour (so a short run catches a steady leak too);
- **descriptors**: with the clients gone, the hub holds no more TCP sockets, no more other descriptors and
  no more Unix sockets beyond its PostgreSQL connections than before the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak_http import Tally, Tokens
from bench.soak_live import Subscribers
from bench.soak_reads import Readers
from bench.soak_samples import MIB, Sample, Sampler, slope_per_hour
from bench.soak_verify import SHOWN, Verification
from bench.soak_writes import Writers

LOG_SHOWN = 5
SLOPE_SAMPLES = 12  # two minutes at the default rate: fewer, and the first minute's growth decides the slope
BAD_LOG_LINES = ("ERROR", "CRITICAL", "Traceback")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "ERROR:", "WARNING:")  # the hub's format, uvicorn's


@dataclass
class Run:
    """Everything the soak records, filled in as it goes."""

    args: argparse.Namespace
    tally: Tally = field(default_factory=Tally)
    tokens: Tokens | None = None
    readers: Readers | None = None
    writers: Writers | None = None
    subscribers: Subscribers | None = None
    sampler: Sampler | None = None
    start: Sample | None = None  # at rest, before the load
    end: Sample | None = None  # at rest, after the load and the verification
    hub_pid: int | None = None
    hub_cpu: float | None = None
    hub_exit: int | None = None
    hub_log: list[str] = field(default_factory=list)
    hub_log_kept: Path | None = None  # a copy of the hub's log, kept when it holds errors
    load_started: float = 0.0
    load_ended: float = 0.0
    restarts: list[tuple[float, str, float, str]] = field(default_factory=list)  # (at, mode, seconds away, error)
    stop_restarts: asyncio.Event = field(default_factory=asyncio.Event)
    last_restart_done: float = 0.0
    verification: Verification | None = None
    aborted: str | None = None

    def planned_restarts(self) -> int:
        every, minutes = self.args.restart_every, self.args.minutes
        if every <= 0:
            return 0
        return sum(1 for k in range(1, int(minutes / every) + 2) if k * every < minutes)

    def criteria(self) -> list[tuple[str, bool, str]]:
        return [
            ("completed", self.aborted is None, self.aborted or "the whole run"),
            _restarts(self),
            _writes(self),
            _audit(self),
            _rss(self),
            _descriptors(self),
        ]

    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.criteria())


def _restarts(run: Run) -> tuple[str, bool, str]:
    done = [r for r in run.restarts if not r[3]]
    planned = run.planned_restarts()
    # Each kind of request that ran was acknowledged after the last restart (if there was one).
    recovered = (
        run.readers is not None
        and run.writers is not None
        and (run.args.readers == 0 or run.readers.last_ok > run.last_restart_done)
        and (run.args.writers == 0 or run.writers.ledger.last_ack > run.last_restart_done)
    )
    after = "yes" if recovered else "no"
    text = f"{len(done)} of {planned} done; reads and writes acknowledged after the last: {after}"
    return "restarts", len(done) == planned == len(run.restarts) and recovered, text


def _writes(run: Run) -> tuple[str, bool, str]:
    v = run.verification
    if v is None:
        return "writes", False, "not verified"
    text = (
        f"submissions {v.submissions_ok:,}/{v.submissions:,},"
        f" slots serving their accepted cells {v.slots_ok}/{v.slots}, revisions {v.revisions_ok:,}/{v.revisions:,}"
    )
    return "writes", v.writes_ok and (v.submissions > 0 or run.args.writers == 0), text


def _audit(run: Run) -> tuple[str, bool, str]:
    v = run.verification
    if v is None or v.audit_exit is None:
        return "audit", False, "not run"
    return "audit", v.audit_exit == 0, f"nrhub audit verify exit {v.audit_exit}: {v.audit_output}"


def _warm_and_last(run: Run) -> tuple[Sample, Sample, list[Sample]] | None:
    if run.sampler is None or not run.sampler.samples:
        return None
    samples = run.sampler.samples
    warm_at = run.args.warm_up * run.args.minutes * 60
    after = [s for s in samples if s.at >= warm_at] or samples[-1:]
    return after[0], samples[-1], after


def _rss(run: Run) -> tuple[str, bool, str]:
    found = _warm_and_last(run)
    if found is None:
        return "RSS flat", False, "no samples"
    warm, last, after = found
    slope = slope_per_hour([(s.at, s.rss / MIB) for s in after])
    grown = (last.rss - warm.rss) / MIB
    tolerance, slope_limit = run.args.rss_tolerance, run.args.rss_slope
    judged = len(after) >= SLOPE_SAMPLES
    text = (
        f"warm {warm.rss / MIB:.1f} MiB (at {warm.at / 60:.1f} min), end {last.rss / MIB:.1f} MiB"
        f" (at {last.at / 60:.1f} min): {grown:+.1f} MiB (at most {tolerance:g}); least-squares slope"
        f" {slope:+.1f} MiB/hour over {len(after)} samples"
        + (f" (at most {slope_limit:g})" if judged else f" (not judged: fewer than {SLOPE_SAMPLES} samples)")
    )
    return "RSS flat", len(after) >= 2 and grown <= tolerance and (slope <= slope_limit or not judged), text


def _descriptors(run: Run) -> tuple[str, bool, str]:
    start, end = run.start, run.end
    if start is None or end is None:
        return "descriptors", False, "not sampled"
    beyond_start, beyond_end = start.unix_beyond_pg, end.unix_beyond_pg
    ok = (
        end.tcp <= start.tcp
        and end.other <= start.other
        and beyond_start is not None
        and beyond_end is not None
        and beyond_end <= beyond_start
    )
    peak = max((s.fds for s in run.sampler.samples), default=0) if run.sampler else 0
    text = f"start {_fds(start)}; end {_fds(end)}; most during the run {peak}"
    return "descriptors", ok, text


def _fds(s: Sample) -> str:
    return f"{s.fds} (tcp {s.tcp}, unix {s.unix} of which PostgreSQL {s.pg_connections}, other {s.other})"


def _counter(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {n:,}" for k, n in counts.most_common()) or "none"


def summary(run: Run) -> list[str]:
    a = run.args
    lines = [
        "",
        f"bench.soak: {a.minutes:g} minutes, PostgreSQL restarted every {a.restart_every:g} min (fast and immediate"
        f" in turn, {a.down_seconds:g} s down); {a.writers} writers over {a.provinces} provinces' reports,"
        f" {a.readers} readers, {a.subscribers} subscribers at a time staying {a.stay[0]:g}-{a.stay[1]:g} s;"
        f" hub pid {run.hub_pid}; {os.cpu_count()} CPUs, load average"
        f" {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "requests by outcome:",
        *run.tally.lines(),
    ]
    if run.writers is not None:
        ledger = run.writers.ledger
        lines.append(
            f"writes acknowledged: {sum(ledger.acknowledged.values()):,} ({_counter(ledger.acknowledged)});"
            f" submissions {len(ledger.submissions):,}; slots retired (a step never acknowledged):"
            f" {_counter(run.writers.retired)}"
        )
    if run.subscribers is not None:
        s = run.subscribers
        lines.append(
            f"subscribers: {s.started:,} connected, {s.outcomes['served']:,} served their whole stay; ended"
            f" otherwise: {_counter(Counter({k: n for k, n in s.outcomes.items() if k != 'served'}))};"
            f" {s.deliveries:,} events delivered, {s.resyncs:,} resync events; error messages: {_counter(s.errors)}"
        )
    restarts = ", ".join(
        f"{at / 60:.1f} min {mode} {away:.1f} s" + (f" FAILED: {error}" if error else "")
        for at, mode, away, error in run.restarts
    )
    lines.append(f"restarts: {len(run.restarts)} ({restarts or 'none'})")
    lines += _timeline(run)
    if run.hub_cpu is not None:
        lines.append(f"hub CPU: {run.hub_cpu:.0f} s over the run")
    lines += _log_lines(run)
    if run.verification is not None and run.verification.problems:
        shown = run.verification.problems[:SHOWN]
        lines.append(f"mismatches ({len(run.verification.problems)}, first {len(shown)}):")
        lines += [f"  {p}" for p in shown]
    lines.append("criteria:")
    for name, ok, text in run.criteria():
        lines.append(f"  {'PASS' if ok else 'FAIL'} {name}: {text}")
    lines.append(f"soak: {'PASS' if run.passed() else 'FAIL'}")
    return lines


def _timeline(run: Run, points: int = 12) -> list[str]:
    """RSS and descriptors at a dozen moments of the run, evenly spaced."""
    samples = run.sampler.samples if run.sampler else []
    if not samples:
        return []
    picked = [samples[round(i * (len(samples) - 1) / (points - 1))] for i in range(points)]
    picked = list(dict.fromkeys(picked))  # a short run has fewer samples than points
    return [
        "hub RSS MiB (descriptors, threads) by minute: "
        + ", ".join(f"{s.at / 60:.1f} {s.rss / MIB:.1f} ({s.fds}, {s.threads})" for s in picked)
    ]


def _log_lines(run: Run) -> list[str]:
    levels = Counter(word for line in run.hub_log if (word := line.split(" ", 1)[0]) in LEVELS)
    errors = [line for line in run.hub_log if line.startswith(("ERROR", "CRITICAL"))]
    kept = f"; kept in {run.hub_log_kept}" if run.hub_log_kept else ""
    out = [
        f"hub log: {len(run.hub_log):,} lines ({_counter(levels)}), {len(errors)} errors,"
        f" {sum(line.startswith('Traceback') for line in run.hub_log)} tracebacks; exit status after SIGINT"
        f" {run.hub_exit}{kept}"
    ]
    out += [f"  {line[:200]}" for line in errors[:LOG_SHOWN]]
    return out
