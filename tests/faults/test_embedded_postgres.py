"""The embedded PostgreSQL's lifecycle under faults: stale files, crashes, a reused PID, shared holders.

Every test runs real ``nrhub`` processes (or small Python holders of ``embedded_server``) on a copy of
one data folder initialised and migrated once per module, kills real processes with real signals and
looks at what is left running. A PID is never trusted here either: the processes of a data folder are
found by their working directory, which a postgres process sets to its data directory. The last tests
check, without a server, what the lifecycle rests on: the postmaster check and the list of holders.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from nrhub.db.embedded import EmbeddedStartError
from nrhub.db.handles import HandleRegistry
from nrhub.db.postmaster import running_postmaster, signal_postmaster
from nrhub.db.processes import ProcessId
from tests.foundation.conftest import NRHUB, free_port, hub_env

START_WITHIN = 60.0
# A program holding the embedded server until its stdin closes; it prints the admin URL once up.
HOLDER = """
import sys
from pathlib import Path
from nrhub.db.embedded import embedded_server
with embedded_server(Path(sys.argv[1])) as url:
    print(url, flush=True)
    sys.stdin.read()
"""


def postgres_of(data_dir: Path) -> list[psutil.Process]:
    """The live postgres processes whose working directory is ``data_dir``'s PostgreSQL folder."""
    pgdata = str(data_dir / "pg")
    found = []
    for process in psutil.process_iter(["name", "cwd", "status"]):
        if process.info["name"] == "postgres" and process.info["cwd"] == pgdata:
            if process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.1)


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """A data folder whose PostgreSQL is initialised and migrated, stopped; tests copy it."""
    path = Path(tempfile.mkdtemp(prefix="nrhub-tmpl-", dir="/tmp"))
    done = subprocess.run(
        [str(NRHUB), "migrate"], env=hub_env(HUB_DATA_DIR=str(path)), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def data_dir(template: Path) -> Iterator[Path]:
    """A copy of the template (ownership kept: as root, the PostgreSQL folder belongs to its own user)."""
    path = Path(tempfile.mkdtemp(prefix="nrhub-fault-", dir="/tmp"))
    subprocess.run(["cp", "-a", f"{template}/.", str(path)], check=True, timeout=60)
    yield path
    for process in postgres_of(path):  # a failed test may leave its server behind
        process.kill()
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def holder(data_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """A process holding the embedded server of ``data_dir`` until its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir)],
        env=hub_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready, _, _ = select.select([process.stdout], [], [], START_WITHIN)
        assert ready and process.stdout is not None, "the holder did not start the server"
        url = process.stdout.readline()
        assert url.startswith("postgresql://"), process.communicate(timeout=10)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def crash_with_its_server(process: subprocess.Popen[str] | subprocess.Popen[bytes], data_dir: Path) -> int:
    """SIGKILL a holder and its postmaster together; wait for the orphaned backends to go. The dead PID."""
    pid = postmaster_pid(data_dir)
    process.kill()
    os.kill(pid, signal.SIGKILL)
    process.wait(10)
    wait_until(lambda: not postgres_of(data_dir), 15, "the killed postmaster's children exit")
    assert (data_dir / "pg" / "postmaster.pid").exists()  # left behind, as after any crash
    return pid


@contextmanager
def serving(data_dir: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(NRHUB), "serve", "--port", str(port)],
            env=hub_env(HUB_DATA_DIR=str(data_dir)), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def ready(base: str, process: subprocess.Popen[bytes], log: Path, seconds: float = START_WITHIN) -> None:
    def answers() -> bool:
        assert process.poll() is None, f"nrhub serve exited:\n{log.read_text()}"
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, seconds, f"{base}/readyz answers 200:\n{log.read_text()}")


def terminate(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM ``nrhub serve``; it must exit in order (the command decides its status: 0, or 128 + 15)."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"nrhub serve did not exit within 30 s of SIGTERM:\n{log.read_text()}")
    assert code in (0, 128 + signal.SIGTERM), log.read_text()


@pytest.mark.slow
def test_a_stale_postmaster_pid_naming_an_unrelated_process_is_set_aside_and_the_process_lives(data_dir):
    with holder(data_dir) as process:
        crash_with_its_server(process, data_dir)
    # The dead postmaster's PID now belongs to another program, of the user postgres runs as: the case
    # where PostgreSQL's own check (kill(pid, 0) succeeds) refuses to start too.
    owner = (data_dir / "pg").stat().st_uid
    unrelated = subprocess.Popen(["sleep", "60"], user=owner if os.geteuid() != owner else None)
    try:
        # PostgreSQL checks the socket's lock file the same way: it names the dead PID too.
        for name in ("postmaster.pid", ".s.PGSQL.5432.lock"):
            lock = data_dir / "pg" / name
            lines = lock.read_text().splitlines()
            lock.write_text("\n".join([str(unrelated.pid), *lines[1:]]) + "\n")

        status = subprocess.run(
            [str(NRHUB), "status"], env=hub_env(HUB_DATA_DIR=str(data_dir)), capture_output=True, text=True,
            timeout=START_WITHIN,
        )  # fmt: skip
        assert unrelated.poll() is None, "the unrelated process was signalled"
        assert "Traceback" not in status.stderr, status.stderr
        assert status.returncode == 0, status.stderr
        assert "database: reachable (embedded)" in status.stdout
        assert "postmaster.pid" in status.stderr  # one line says what was set aside
        assert len(status.stderr.splitlines()) == 1, status.stderr
        assert postgres_of(data_dir) == []  # and the server it started is stopped again
    finally:
        unrelated.kill()
        unrelated.wait(10)


@pytest.mark.slow
def test_after_the_hub_and_postgres_crash_together_the_next_serve_stops_postgres_on_sigterm(data_dir, tmp_path):
    first = tmp_path / "first.log"
    with serving(data_dir, first) as (process, base):
        ready(base, process, first)
        crash_with_its_server(process, data_dir)

    second = tmp_path / "second.log"
    with serving(data_dir, second) as (process, base):
        ready(base, process, second)
        postmaster = postmaster_pid(data_dir)
        terminate(process, second)
    assert not _alive(postmaster), second.read_text()
    assert postgres_of(data_dir) == []
    assert not (data_dir / "pg" / "postmaster.pid").exists()
    assert "Traceback" not in second.read_text()


@pytest.mark.slow
def test_a_postmaster_killed_under_a_running_hub_is_restarted_and_readyz_recovers(data_dir, tmp_path):
    log = tmp_path / "serve.log"
    with serving(data_dir, log) as (process, base):
        ready(base, process, log)
        killed = postmaster_pid(data_dir)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: not _alive(killed), 10, "the postmaster dies")
        ready(base, process, log, seconds=15)
        assert process.poll() is None  # the same hub process, not a restarted one
        assert postmaster_pid(data_dir) != killed
        terminate(process, log)
    assert postgres_of(data_dir) == []
    # One line says what happened. (asyncpg's own pool logs its reconnection attempts with tracebacks.)
    said = [line for line in log.read_text().splitlines() if "hub.embedded" in line]
    assert len(said) == 1 and "restarted" in said[0], said


@pytest.mark.slow
def test_a_second_holder_leaving_does_not_stop_the_server_the_first_still_uses(data_dir):
    with holder(data_dir) as first:
        with holder(data_dir) as second:
            postmaster = postmaster_pid(data_dir)
            second.communicate("", timeout=30)  # closing its stdin lets it leave normally
            assert second.returncode == 0
        assert _alive(postmaster), "the second holder stopped the server the first holds"
        assert postmaster_pid(data_dir) == postmaster
        first.communicate("", timeout=30)
        assert first.returncode == 0
    wait_until(lambda: not _alive(postmaster), 10, "the last holder stops the server")
    assert postgres_of(data_dir) == []


def _restarted(data_dir: Path, killed: int) -> bool:
    try:
        pid = postmaster_pid(data_dir)
    except (OSError, ValueError, IndexError):  # not there yet, or being written
        return False
    return pid != killed and _alive(pid)


@pytest.mark.slow
def test_two_holders_of_a_killed_server_restart_it_once(data_dir):
    with holder(data_dir) as first, holder(data_dir) as second:
        killed = postmaster_pid(data_dir)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: _restarted(data_dir, killed), 15, "a holder restarts the server")
        time.sleep(2 * 1.0)  # both supervisors have looked again since (they look every second)
        postmasters = [p for p in postgres_of(data_dir) if Path(p.cmdline()[0]).name == "postgres"]
        assert [p.pid for p in postmasters] == [postmaster_pid(data_dir)]
        said = [process.communicate("", timeout=30)[1] for process in (second, first)]
    assert sum("restarted" in lines for lines in said) == 1, said
    assert postgres_of(data_dir) == []


@pytest.fixture
def deep_data_dir(data_dir: Path) -> Iterator[Path]:
    """The copy moved so deep that ``pg/.s.PGSQL.5432`` is longer than a socket's path may be (107 bytes)."""
    deep = data_dir / ("deep-" + "d" * 90)
    deep.mkdir()
    for name in ("pg", "run"):
        (data_dir / name).rename(deep / name)
    assert len(str(deep / "pg" / ".s.PGSQL.5432")) > 107
    yield deep
    for process in postgres_of(deep):
        process.kill()


@pytest.mark.slow
def test_a_data_folder_too_deep_for_a_socket_gets_a_private_socket_folder(deep_data_dir):
    with holder(deep_data_dir) as process:
        folder = Path(postmaster_socket_folder(deep_data_dir))
        assert folder.parent == Path("/tmp") and folder.name.startswith("nrhub-pg-")
        found = folder.lstat()
        assert oct(found.st_mode & 0o777) == "0o700"
        assert found.st_uid == (deep_data_dir / "pg").stat().st_uid  # the user postgres runs as
        process.communicate("", timeout=30)
        assert process.returncode == 0
    assert postgres_of(deep_data_dir) == []
    assert not folder.exists()  # removed with the server


@pytest.mark.slow
def test_a_socket_folder_planted_by_someone_else_is_refused_in_one_line(deep_data_dir):
    # The folder's name is derived from the data directory (so a restart listens where the hub's URL points).
    digest = hashlib.sha256(os.fsencode(deep_data_dir / "pg")).hexdigest()[:16]
    planted = Path("/tmp") / f"nrhub-pg-{digest}"
    planted.symlink_to("/tmp")
    try:
        status = subprocess.run(
            [str(NRHUB), "status"], env=hub_env(HUB_DATA_DIR=str(deep_data_dir)), capture_output=True, text=True,
            timeout=START_WITHIN,
        )  # fmt: skip
        assert status.returncode == 1, status.stderr
        assert status.stderr.startswith("nrhub: error: ") and len(status.stderr.splitlines()) == 1, status.stderr
        assert str(planted) in status.stderr
        assert postgres_of(deep_data_dir) == []
    finally:
        planted.unlink()


def postmaster_socket_folder(data_dir: Path) -> str:
    return (data_dir / "pg" / "postmaster.pid").read_text().splitlines()[4]


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait(10)


def test_a_pid_file_naming_another_program_is_not_a_postmaster_and_is_never_signalled(tmp_path, unrelated):
    pgdata = tmp_path.resolve()
    (pgdata / "postmaster.pid").write_text(f"{unrelated.pid}\n{pgdata}\n1700000000\n5432\n{pgdata}\n\n\nready\n")
    assert running_postmaster(pgdata) is None
    assert signal_postmaster(pgdata, signal.SIGTERM) is None
    # Not even a postgres process would do, unless it works in this directory: this test's own process.
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n")
    assert signal_postmaster(pgdata, signal.SIGTERM) is None
    assert unrelated.poll() is None


def test_holders_that_died_or_whose_pid_was_reused_are_pruned(tmp_path, unrelated):
    registry = HandleRegistry(tmp_path)
    me = ProcessId.current()
    now_unrelated = ProcessId.of(unrelated.pid)
    assert now_unrelated is not None
    # A holder that once ran as the unrelated process's PID, but started at another time; and one that is gone.
    reused = ProcessId(unrelated.pid, now_unrelated.start - 1)
    dead = subprocess.Popen(["true"])
    dead.wait(10)
    with registry.locked():
        for holder_id in (reused, ProcessId(dead.pid, 1), me, me):
            registry.add(holder_id)
        assert registry.holders() == [me, me]
        assert registry.remove(me) == [me]  # one hold of a process that holds twice
        assert registry.remove(me) == []


def test_the_lock_keeps_out_another_holder_even_in_the_same_process(tmp_path):
    registry = HandleRegistry(tmp_path)
    with registry.locked():
        with pytest.raises(EmbeddedStartError, match=r"embedded\.lock"), registry.locked(seconds=0.3):
            pass
    with registry.locked(seconds=0.3):  # released when the first holder left
        pass
