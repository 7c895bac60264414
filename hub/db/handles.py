"""Which processes hold a data folder's embedded server, so that the last one to leave stops it.

``nrhub demo load`` beside a running ``nrhub serve`` shares one PostgreSQL: each process adds itself
to the list when it starts or joins the server and removes itself when it leaves; the one that leaves
it empty stops the server. A holder is a :class:`ProcessId` (PID and start time), so one that died
without leaving (SIGKILL, a crash) is pruned the next time the list is read, even once its PID
belongs to another process. Every read and change happens under an exclusive ``flock`` on a lock file
beside the list; the kernel drops that lock when its holder's file is closed, which dying does, so a
crash never leaves the folder locked. Starting, restarting and stopping the server happen under the
same lock, so two holders never start it both.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from nrhub.db.embedded_errors import EmbeddedStartError
from nrhub.db.processes import ProcessId

# Long enough for another holder to start (or stop) the server under the lock, then give up in words.
LOCK_TIMEOUT = 180.0


class HandleRegistry:
    """The holders of one embedded server, in ``run_dir/handles.json`` under ``run_dir/embedded.lock``."""

    def __init__(self, run_dir: Path) -> None:
        self._list = run_dir / "handles.json"
        self._lock = run_dir / "embedded.lock"

    @contextlib.contextmanager
    def locked(self, seconds: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the folder's lock (against other processes and other threads alike) for the block."""
        # A file descriptor of its own each time: flock conflicts between open files, even in one process.
        try:
            fd = os.open(self._lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise EmbeddedStartError(f"cannot open {self._lock}: {exc.strerror}") from None
        try:
            deadline = time.monotonic() + seconds
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise EmbeddedStartError(
                            f"another nrhub process has held {self._lock} for {seconds:.0f} s; is it stuck?"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    def holders(self) -> list[ProcessId]:
        """The live holders (call under the lock); dead ones are left out."""
        try:
            entries = json.loads(self._list.read_text())
            recorded = [ProcessId(int(pid), int(start)) for pid, start in entries]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError):  # edited by hand: _write never leaves half a list
            return []
        return [holder for holder in recorded if holder.is_alive()]

    def add(self, holder: ProcessId) -> None:
        """Record one more hold by ``holder`` (a process may hold the server more than once)."""
        self._write([*self.holders(), holder])

    def remove(self, holder: ProcessId) -> list[ProcessId]:
        """Drop one hold by ``holder``; the live holders left."""
        left = self.holders()
        if holder in left:
            left.remove(holder)
        self._write(left)
        return left

    def _write(self, holders: list[ProcessId]) -> None:
        # Written beside and renamed over: a crash mid-write leaves the old list, never half of one.
        draft = self._list.with_suffix(".tmp")
        draft.write_text(json.dumps([[h.pid, h.start] for h in holders]))
        os.replace(draft, self._list)
