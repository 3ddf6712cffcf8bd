"""A PostgreSQL server of one's own, for the tests and benchmarks that need one: a
fresh data directory, a free port on loopback, a `vmflow` database; removed after."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from vmflow.processes import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def as_postgres(*cmd: str) -> None:
    subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)], check=True,
                   capture_output=True)


@contextmanager
def private_postgres(prefix: str = "vmflow-pg-") -> Iterator[str]:
    """Yields the SQLAlchemy URL of the new server's `vmflow` database."""
    data = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    shutil.chown(data, "postgres", "postgres")
    port = free_port()
    as_postgres(f"{PG_BIN}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(data), "-l", f"{data}/log", "-w", "-o",
                f"'-p {port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off'", "start")
    try:
        as_postgres("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                    "'CREATE DATABASE vmflow'")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/vmflow"
    finally:
        with suppress(subprocess.CalledProcessError):
            as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)
