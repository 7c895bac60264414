"""Processes as Linux's /proc shows them: who runs under a PID, since when, where and what.

A PID names a process only while that process lives: once it exits, the kernel may give the number
to any new process. A PID together with its process's start time (field 22 of /proc/<pid>/stat, in
clock ticks after boot) never names two processes, so that pair is what the embedded server's
handles record (hub/db/handles.py). What a process runs and in which folder (``exe`` and ``cwd``)
is what tells a data directory's postmaster from a stranger that inherited its PID
(hub/db/postmaster.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process, named so that a reused PID does not match: its PID and its start time."""

    pid: int
    start: int  # clock ticks after boot

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        """The process running as ``pid`` now; None when there is none, or only a zombie that has exited."""
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except (OSError, ValueError):
            return None
        # Field 2, the command name, is in parentheses and may hold spaces and parentheses itself.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, start = fields[0], int(fields[19])
        if state in ("Z", "X"):  # exited; only its exit status is left for its parent to collect
            return None
        return cls(pid, start)

    @classmethod
    def current(cls) -> ProcessId:
        me = cls.of(os.getpid())
        assert me is not None, "/proc does not show this process"
        return me

    def is_alive(self) -> bool:
        """True while this very process runs (not another one that inherited its PID)."""
        return ProcessId.of(self.pid) == self


def executable(pid: int) -> Path | None:
    """The program ``pid`` runs; None when it cannot be read (no such process, a zombie, not ours to read)."""
    try:
        return Path(os.readlink(PROC / str(pid) / "exe").removesuffix(" (deleted)"))
    except OSError:
        return None


def working_directory(pid: int) -> Path | None:
    """The current directory of ``pid``; None when it cannot be read."""
    try:
        return Path(os.readlink(PROC / str(pid) / "cwd"))
    except OSError:
        return None


def command_line(pid: int) -> list[str]:
    """The arguments of ``pid`` as it shows them now (a postgres child rewrites its own)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [os.fsdecode(arg) for arg in raw.split(b"\0") if arg]


def running_pids() -> Iterator[int]:
    """Every PID /proc lists now."""
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)
