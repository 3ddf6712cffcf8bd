"""A PostgreSQL server of one's own, for the tests and benchmarks that need one: a
fresh data directory, a free port on loopback, a `vmflow` database; removed after."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
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
