"""A data directory's postmaster.pid, and whether the process it names really is that directory's postmaster.

PostgreSQL writes ``postmaster.pid`` when it starts and removes it when it stops. After a crash the file
stays behind, naming a PID the kernel may since have given to an unrelated process: PostgreSQL then
refuses to start (it only checks that the PID exists), and code that signals "the postmaster" from the
file (``pg_ctl stop`` does) signals that process instead. So a PID read from the file is believed only
when the process now running under it is a ``postgres`` program, working in this data directory (the
postmaster and its children change to it), and started as a postmaster (its children rename themselves
``postgres: checkpointer`` and so on). Signals then go through a pidfd opened before that check, so
they reach the process that passed it, or nothing.

The lines of the file (PostgreSQL's src/include/utils/pidfile.h): 1 PID, 2 data directory, 3 start
time, 4 port, 5 first Unix socket directory, 6 first listen address, 7 shared memory key and id,
8 status (starting, stopping, ready, standby).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from nrhub.db.processes import ProcessId, command_line, executable, running_pids, working_directory

PID_FILE = "postmaster.pid"
DEFAULT_PORT = 5432


@dataclass(frozen=True, slots=True)
class PostmasterFile:
    """What a postmaster.pid says; ``pid`` is 0 when its first line is not a number (a torn or foreign file)."""

    pid: int
    port: int
    socket_dir: Path | None
    status: str

    @classmethod
    def read(cls, pgdata: Path) -> PostmasterFile | None:
        """The file of ``pgdata``; None when there is none."""
        try:
            lines = (pgdata / PID_FILE).read_text().splitlines()
        except FileNotFoundError:
            return None
        lines = [line.strip() for line in lines] + [""] * 8
        port = int(lines[3]) if lines[3].isdigit() else DEFAULT_PORT
        # Line 5 lists the socket directories; the first is where the server's socket is.
        socket_dir = Path(lines[4].split(",")[0]) if lines[4] else None
        return cls(int(lines[0]) if lines[0].isdigit() else 0, port, socket_dir, lines[7])


def is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """True when the process running as ``pid`` is the postmaster of ``pgdata`` (a resolved path)."""
    program = executable(pid)
    if program is None or program.name != "postgres" or working_directory(pid) != pgdata:
        return False
    arguments = command_line(pid)
    return bool(arguments) and Path(arguments[0]).name == "postgres"


def running_postmaster(pgdata: Path) -> PostmasterFile | None:
    """The postmaster.pid of ``pgdata`` when the process it names is that directory's live postmaster."""
    found = PostmasterFile.read(pgdata)
    return found if found is not None and found.pid and is_postmaster_of(found.pid, pgdata) else None


def processes_in(pgdata: Path) -> list[int]:
    """The postgres processes working in ``pgdata``: a postmaster and its children, or the orphans of a dead one."""
    return [
        pid
        for pid in running_pids()
        if working_directory(pid) == pgdata and (program := executable(pid)) is not None and program.name == "postgres"
    ]


def wait_for_no_processes(pgdata: Path, seconds: float) -> list[int]:
    """Wait until no postgres process works in ``pgdata``; those still there after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := processes_in(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def signal_postmaster(pgdata: Path, signum: signal.Signals) -> ProcessId | None:
    """Send ``signum`` to the postmaster of ``pgdata`` if it runs; the process signalled, or None."""
    found = PostmasterFile.read(pgdata)
    if found is None or not found.pid:
        return None
    try:
        pidfd = _open_pidfd(found.pid)
    except ProcessLookupError:
        return None
    try:
        # Checked after the pidfd is open: if the PID changed hands in between, the check fails, or
        # the pidfd names the process that exited and the signal reaches nobody.
        target = ProcessId.of(found.pid)
        if target is None or not is_postmaster_of(found.pid, pgdata):
            return None
        if pidfd is None:
            os.kill(found.pid, signum)
        else:
            signal.pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        return None
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return target


def wait_for_exit(process: ProcessId, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``process`` to exit; whether it did."""
    deadline = time.monotonic() + seconds
    while process.is_alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _open_pidfd(pid: int) -> int | None:
    """A pidfd of ``pid``; None on a kernel without pidfds (before Linux 5.3). ProcessLookupError: no such PID."""
    try:
        return os.pidfd_open(pid)
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            return None
        raise
