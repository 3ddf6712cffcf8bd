"""A PostgreSQL server of one's own, for the tests and benchmarks that need one: a
fresh data directory, a free port on loopback, a `vmflow` database; removed after."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from vmflow.processes import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def as_postgres(*cmd: str) -> None:
    subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)], check=True,
                   capture_output=True)


@dataclass(frozen=True)
class Postgres:
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/vmflow"

    def start(self) -> None:
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(self.data), "-l", f"{self.data}/log", "-w",
                    "-o", f"'-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 "
                    "-c fsync=off'", "start")

    def kill(self) -> None:
        """Stopped dead (no checkpoint, no goodbye to clients): a crash, as far as the
        clients and the next start can tell."""
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")


@contextmanager
def postgres_server(prefix: str = "vmflow-pg-") -> Iterator[Postgres]:
    data = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    shutil.chown(data, "postgres", "postgres")
    pg = Postgres(data, free_port())
    as_postgres(f"{PG_BIN}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    pg.start()
    try:
        as_postgres("psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-c",
                    "'CREATE DATABASE vmflow'")
        yield pg
    finally:
        with suppress(subprocess.CalledProcessError):
            pg.kill()
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def private_postgres(prefix: str = "vmflow-pg-") -> Iterator[str]:
    """Yields the SQLAlchemy URL of the new server's `vmflow` database."""
    with postgres_server(prefix) as pg:
        yield pg.url


def postmaster_pid(pg: Postgres) -> int | None:
    """The server's pid while it runs (the first line of its postmaster.pid)."""
    try:
        return int((pg.data / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def accepts(port: int) -> bool:
    with suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def crash(pg: Postgres) -> None:
    """kill -9 of the server and each of its backends: what a crash of the machine
    looks like to the clients; the next start() recovers from the write-ahead log."""
    pid = postmaster_pid(pg)
    assert pid is not None, "PostgreSQL is not running"
    procs = [pid, *children(pid)]  # read first: once it dies they belong to init
    for p in procs:
        with suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    assert all(gone(p) for p in procs), f"PostgreSQL processes {procs} outlived kill -9"


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """Alive, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ensure_running(pg: Postgres) -> None:
    """Started again, should a test have left it down."""
    if not accepts(pg.port):
        pg.start()
