"""One embedded PostgreSQL data directory and the binaries that run it: initdb, start, stop.

pgserver's wheel supplies the binaries (``pgserver/pginstall/bin``); the lifecycle is the hub's own.
pgserver's (``get_server`` and its clean-up) believed any PID in ``postmaster.pid``: after a crash it
took a stranger that inherited the PID for the server, failed to connect, and then stopped "the
server" by signalling that stranger. Here every PID is verified first (hub/db/postmaster.py), a stale
``postmaster.pid`` is set aside only once no postgres process works in the directory any more, and
only a verified postmaster is ever signalled. The callers hold the folder's lock (hub/db/handles.py)
around every method, so one process at a time initialises, starts or stops a data directory.

PostgreSQL refuses to run as root, so a hub running as root runs the binaries as the system user
``pgserver`` (made with useradd if missing; pgserver's name for it, so data directories it made keep
working), which then owns the data directory and must be able to reach it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shlex
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nrhub.db.embedded_errors import EmbeddedStartError
from nrhub.db.postmaster import (
    DEFAULT_PORT,
    PID_FILE,
    PostmasterFile,
    is_postmaster_of,
    running_postmaster,
    signal_postmaster,
    wait_for_exit,
    wait_for_no_processes,
)
from nrhub.db.socket_folder import SOCKET_NAME, is_fallback_folder, socket_folder

POSTGRES_USER = "pgserver"
START_TIMEOUT = 60  # seconds; pg_ctl's default, which crash recovery after a kill fits in
ORPHANS_TIMEOUT = 10.0  # for the children of a killed postmaster to notice and exit
# A fast shutdown (clients disconnected, a checkpoint), then an immediate one, then a kill.
STOP_STEPS = ((signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0))

log = logging.getLogger("hub.embedded")


@dataclass(frozen=True, slots=True)
class Running:
    """The running server :meth:`Cluster.ensure_running` found or started."""

    postmaster: PostmasterFile
    started: bool  # by that call; False when it joined a running server
    set_aside: PostmasterFile | None  # the stale postmaster.pid it removed first, if any


class Cluster:
    """The data directory ``pgdata`` (a resolved path) and its server."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.log = pgdata / "postgres.log"
        self._account: pwd.struct_passwd | None = None

    def prepare(self) -> None:
        """Make the data directory if it is new (initdb), for the user postgres runs as."""
        account = self._run_as()
        if account is not None:
            _grant_search(self.pgdata, account)
            # The binaries too: a virtualenv in a private folder (mktemp -d, a home) is out of postgres's reach.
            _grant_search(binaries() / "postgres", account)
        if (self.pgdata / "PG_VERSION").exists():
            return
        try:
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            if account is not None:
                os.chown(self.pgdata, account.pw_uid, account.pw_gid)
        except OSError as exc:
            raise EmbeddedStartError(f"cannot make {self.pgdata} for the embedded PostgreSQL: {exc.strerror}") from None
        self._run(
            "initdb", "-D", str(self.pgdata), "--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres",
            seconds=180,
        )  # fmt: skip

    def running(self) -> PostmasterFile | None:
        """The verified live postmaster's postmaster.pid; None when the server is not running."""
        return running_postmaster(self.pgdata)

    def ensure_running(self) -> Running:
        """Join the running server, or start it, first setting aside a stale postmaster.pid."""
        deadline = time.monotonic() + START_TIMEOUT
        set_aside = None
        while True:
            found = PostmasterFile.read(self.pgdata)
            if found is None:
                return Running(self._start(), started=True, set_aside=set_aside)
            if not (found.pid and is_postmaster_of(found.pid, self.pgdata)):
                self._set_aside(found)
                set_aside = found
            elif found.status == "ready":
                return Running(found, started=False, set_aside=set_aside)
            elif time.monotonic() > deadline:  # started or being stopped by someone else: let it settle
                raise EmbeddedStartError(f"the postgres of {self.pgdata} stayed {found.status!r} for {START_TIMEOUT} s")
            else:
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the verified postmaster, if one runs; anything else is left alone."""
        found = PostmasterFile.read(self.pgdata)
        for signum, seconds in STOP_STEPS:
            target = signal_postmaster(self.pgdata, signum)
            if target is None or wait_for_exit(target, seconds):
                break
        if found is not None and found.socket_dir is not None and is_fallback_folder(found.socket_dir):
            try:
                found.socket_dir.rmdir()  # empty once postgres removed its socket; else left
            except OSError:
                pass

    def _start(self) -> PostmasterFile:
        sockets = socket_folder(self.pgdata, self._uid())
        # pg_ctl hands -o to a shell, hence the quoting. -h '': no TCP at all, the socket only.
        options = f"-h '' -p {DEFAULT_PORT} -k {shlex.quote(str(sockets))}"
        self._run(
            "pg_ctl", "start", "-w", "-t", str(START_TIMEOUT), "-D", str(self.pgdata), "-l", str(self.log),
            "-o", options, seconds=START_TIMEOUT + 15,
        )  # fmt: skip
        found = self.running()
        if found is None or found.status != "ready":
            raise EmbeddedStartError(f"postgres started in {self.pgdata} and stopped: {self._reason(b'')}")
        return found

    def _set_aside(self, stale: PostmasterFile) -> None:
        # Never while a process of the directory runs: orphans of a killed postmaster still use its
        # shared memory, which PostgreSQL checks only through this file.
        left = wait_for_no_processes(self.pgdata, ORPHANS_TIMEOUT)
        if left:
            raise EmbeddedStartError(
                f"postgres processes {', '.join(map(str, left))} still work in {self.pgdata}, yet its "
                f"{PID_FILE} names PID {stale.pid}, not their postmaster: stop them, then start again"
            )
        (self.pgdata / PID_FILE).unlink(missing_ok=True)
        # The socket's lock file names the dead postmaster too, and PostgreSQL refuses a live PID there alike.
        folder = stale.socket_dir
        if folder is not None and (folder == self.pgdata or folder == socket_folder(self.pgdata, self._uid())):
            for name in (f"{SOCKET_NAME}.lock", SOCKET_NAME):
                (folder / name).unlink(missing_ok=True)

    def _run(self, program: str, *args: str, seconds: float) -> None:
        command = [str(binaries() / program), *args]
        with tempfile.TemporaryFile() as output:  # not a pipe: the server pg_ctl starts must not hold it
            try:
                subprocess.run(
                    command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, cwd=self.pgdata,
                    timeout=seconds, check=True, **_as_user(self._run_as()),
                )  # fmt: skip
            except subprocess.CalledProcessError:
                output.seek(0)
                raise EmbeddedStartError(f"{program} failed for {self.pgdata}: {self._reason(output.read())}") from None
            except subprocess.TimeoutExpired:
                raise EmbeddedStartError(f"{program} did not finish within {seconds:.0f} s for {self.pgdata}") from None
            except OSError as exc:
                raise EmbeddedStartError(f"cannot run {command[0]}: {exc.strerror}") from None

    def _reason(self, output: bytes) -> str:
        """The line that says why: the server log's last FATAL or PANIC, else the program's last line."""
        lines = output.decode(errors="replace").splitlines()
        try:
            with self.log.open("rb") as server_log:
                server_log.seek(max(0, server_log.seek(0, os.SEEK_END) - 16_384))  # the end is enough
                tail = server_log.read().decode(errors="replace").splitlines()
            lines = [line for line in tail if "FATAL" in line or "PANIC" in line][-1:] or lines
        except OSError:
            pass
        lines = [line.strip() for line in lines if line.strip()]
        return lines[-1] if lines else "no reason given"

    def _run_as(self) -> pwd.struct_passwd | None:
        if self._account is None and os.geteuid() == 0:
            self._account = _postgres_account()
        return self._account

    def _uid(self) -> int:
        account = self._run_as()
        return os.geteuid() if account is None else account.pw_uid


def binaries() -> Path:
    # Found without importing pgserver, whose import sets up its own lifecycle machinery.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedStartError("the embedded PostgreSQL needs the pgserver package; or set HUB_DATABASE_URL")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _postgres_account() -> pwd.struct_passwd:
    for attempt in range(2):
        try:
            return pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            if attempt:
                break
        try:  # another process may add it at the same moment: then getpwnam finds it anyway
            useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_USER]
            subprocess.run(useradd, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            break
    raise EmbeddedStartError(
        f"nrhub runs as root, which PostgreSQL refuses: add a user {POSTGRES_USER} for it "
        f"(useradd --system {POSTGRES_USER}), or run nrhub as another user"
    )


def _as_user(account: pwd.struct_passwd | None) -> dict[str, Any]:
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _grant_search(pgdata: Path, account: pwd.struct_passwd) -> None:
    """Let ``account`` reach ``pgdata``: search permission (o+x, not read) on each folder above it that lacks it."""
    for folder in pgdata.parents:
        found = folder.stat()
        mode = stat.S_IMODE(found.st_mode)
        if mode & stat.S_IXOTH or (found.st_uid == account.pw_uid and mode & stat.S_IXUSR):
            continue
        if found.st_gid == account.pw_gid and mode & stat.S_IXGRP:
            continue
        folder.chmod(mode | stat.S_IXOTH)
        log.warning(
            "gave others search permission on %s: postgres, run as %s, must reach %s", folder, account.pw_name, pgdata
        )
