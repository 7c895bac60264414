"""The hub process's memory and descriptors over the soak, and the least-squares slope of its RSS.

A descriptor count alone cannot tell a leak from a busy moment: the pool holds 2 to 10 PostgreSQL
connections, the listener one more, and every client connection is a socket. So each sample splits
the hub's descriptors by kind, from /proc: TCP sockets (the listening socket and client
connections), Unix sockets (PostgreSQL connections, which here are all Unix sockets, and the event
loop's own), and everything else (epoll, pipes, files). PostgreSQL counts the hub's connections
itself (``pg_stat_activity``); only the hub and this sampler connect to the soak's database, and the
sampler's own connection is left out. With the clients gone, a hub that leaks nothing has its
listening socket alone over TCP, as many Unix sockets beyond its PostgreSQL connections as when it
started, and as many other descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil

HUB_CONNECTIONS = """SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"""
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the load started
    rss: int  # bytes
    threads: int  # each thread that hashed a secret holds 16 MiB of malloc arena (auth/secrets.py)
    fds: int
    tcp: int
    unix: int
    other: int
    pg_connections: int | None  # None: PostgreSQL did not answer (restarting)

    @property
    def unix_beyond_pg(self) -> int | None:
        return None if self.pg_connections is None else self.unix - self.pg_connections


def _socket_inodes(pid: int, tables: tuple[str, ...], column: int) -> set[str]:
    inodes: set[str] = set()
    for table in tables:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > column:
                    inodes.add(fields[column])
    return inodes


def descriptors(pid: int) -> tuple[int, int, int]:
    """The process's open descriptors as (TCP sockets, Unix sockets, the rest)."""
    tcp_inodes = _socket_inodes(pid, ("tcp", "tcp6"), 9)
    unix_inodes = _socket_inodes(pid, ("unix",), 6)
    tcp = unix = other = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        inode = target[len("socket:[") : -1] if target.startswith("socket:[") else None
        if inode is not None and inode in tcp_inodes:
            tcp += 1
        elif inode is not None and inode in unix_inodes:
            unix += 1
        else:
            other += 1
    return tcp, unix, other


class Sampler:
    """Samples the hub process every ``every`` seconds until ``stop``."""

    def __init__(self, pid: int, database_url: str, every: float) -> None:
        self.process = psutil.Process(pid)
        self.database_url, self.every = database_url, every
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self.stop = asyncio.Event()

    async def sample(self) -> Sample:
        pg_connections = await self._pg_connections()
        tcp, unix, other = descriptors(self.process.pid)
        taken = Sample(
            time.monotonic() - self.started,
            self.process.memory_info().rss,
            self.process.num_threads(),
            tcp + unix + other,
            tcp,
            unix,
            other,
            pg_connections,
        )
        return taken

    async def run(self) -> None:
        """Sample now, every ``every`` seconds, and once more when stopped."""
        while not self.stop.is_set():
            self.samples.append(await self.sample())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.every)
        self.samples.append(await self.sample())

    async def _pg_connections(self) -> int | None:
        try:
            async with asyncio.timeout(3):
                conn = await asyncpg.connect(self.database_url)
                try:
                    return int(await conn.fetchval(HUB_CONNECTIONS))
                finally:
                    await conn.close()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour; 0 with fewer than two points."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600
