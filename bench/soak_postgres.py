"""The soak's own PostgreSQL: a private server it may stop, crash and start again (bench/soak.py).

It never touches another server: its own data folder under a temporary folder, pgserver's binaries
(``pgserver._commands``), and a Unix socket in that folder only (no TCP at all). As root, the
binaries run as the user ``pgserver`` (PostgreSQL refuses to run as root), as in the test suite's
private servers (tests/reports/test_crash.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

with warnings.catch_warnings():
    # pgserver computes a runtime folder when imported; only its command wrappers are used here.
    warnings.simplefilter("ignore")
    from pgserver import _commands as pg

DATABASE = "hub"
STOP_MODES = ("fast", "immediate")  # an orderly shutdown, then a crash: no checkpoint, no goodbye to clients


class PostgresFailed(Exception):
    """pg_ctl or initdb failed; the message carries the server log's tail."""


class PrivatePostgres:
    """A PostgreSQL server in its own temporary folder, on a Unix socket only."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nrhub-soak-"))
        self.pgdata = self.root / "pgdata"
        self.sockets = self.root / "s"
        self.log = self.root / "postgres.log"
        self.sockets.mkdir()
        self.user: str | None = None
        if os.geteuid() == 0:
            import pwd

            self.user = "pgserver"
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self.root.chmod(0o755)

    def _run(self, command: str, args: list[str], seconds: float) -> None:
        try:
            getattr(pg, command)(args, pgdata=self.pgdata, user=self.user, timeout=seconds)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise PostgresFailed(f"{command} {' '.join(args)} failed ({exc}):\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 15) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def init(self) -> None:
        self._run("initdb", ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"], 120)

    def start(self) -> None:
        sockets = f"-k {self.sockets}"
        self._run("pg_ctl", ["-w", "-t", "60", "-o", '-h ""', "-o", sockets, "-l", str(self.log), "start"], 90)

    def stop(self, mode: str) -> None:
        self._run("pg_ctl", ["-w", "-t", "60", "-m", mode, "stop"], 90)

    def restart(self, mode: str, down_seconds: float) -> float:
        """Stop in ``mode``, stay down ``down_seconds``, start again; returns the seconds it was away."""
        began = time.monotonic()
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()
        return time.monotonic() - began

    def running(self) -> bool:
        try:
            pg.pg_ctl(["status"], pgdata=self.pgdata, user=self.user, timeout=10)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return False
        return True

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@/{database}?host={self.sockets}"

    def remove(self) -> None:
        """Stop the server if it runs (as a crash: nothing in it is kept) and delete its folder."""
        try:
            if self.pgdata.exists() and self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
