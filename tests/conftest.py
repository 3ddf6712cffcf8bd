"""Fixtures and helpers shared by every tier: the tiny guest, a home qemu can read,
the Temporal dev server, the tier's database (SQLite, or PostgreSQL with
VMFLOW_TEST_DATABASE=postgresql), a DB session on a settings' database, a bearer header."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlmodel import Session

from tests.histories.record import record as record_histories
from tests.postgres import Postgres, postgres_server
from vmflow import db
from vmflow.names import SEARCH_ATTRIBUTES
from vmflow.processes import free_port
from vmflow.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# a branch whose guest build differs builds into its own (a shared cache rebuilt under
# another run's guests would pull their backing files away)
GUEST_CACHE = Path(os.environ.get("VMFLOW_TEST_GUEST_CACHE", "/var/cache/vmflow/tiny-guest"))
TEMPORAL = ROOT / ".venv/bin/temporal"


@pytest.fixture(scope="session")
def tiny_guest() -> Path:
    """The tiny guest, built once per machine (make up builds the same cache)."""
    subprocess.run([str(ROOT / "vmflow/setup/build-tiny-guest.sh"), str(GUEST_CACHE)], check=True)
    return GUEST_CACHE


def qemu_home(prefix: str) -> Path:
    """A VMFLOW_HOME qemu (libvirt-qemu) can traverse and O_DIRECT works in: not tmpfs."""
    path = Path(tempfile.mkdtemp(prefix=f"vmflow-{prefix}-", dir="/var/tmp"))
    path.chmod(0o755)
    return path


@contextmanager
def temporal_dev_server(d: Path) -> Iterator[str]:
    """The real Temporal dev server (SQLite file in d, vmflow's search attributes) on a
    free loopback port; yields its address and stops it on exit."""
    address = f"127.0.0.1:{free_port()}"
    cmd = [str(TEMPORAL), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
           "--port", address.rsplit(":", 1)[1], "--db-filename", str(d / "t.db"),
           "--log-level", "error",
           "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    for key in SEARCH_ATTRIBUTES:
        cmd += ["--search-attribute", f"{key.name}=Keyword"]
    log = (d / "server.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            probe = subprocess.run(
                [str(TEMPORAL), "operator", "cluster", "health", "--address", address],
                capture_output=True, text=True)
            if probe.returncode == 0 and "SERVING" in probe.stdout:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"temporal dev server did not start: {probe.stderr}; "
                                   f"log: {(d / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield address
        record_histories(address)  # only with VMFLOW_RECORD_HISTORIES set
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s: a test's server never outlives its fixture."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# the database the API and workflow tiers run on: `make test` runs them once on each
# (tiers api-pg and workflows-pg set postgresql)
TEST_DATABASE = os.environ.get("VMFLOW_TEST_DATABASE", "sqlite")
if TEST_DATABASE not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"VMFLOW_TEST_DATABASE={TEST_DATABASE!r}: sqlite or postgresql")


@pytest.fixture(scope="session")
def test_postgres() -> Iterator[Postgres | None]:
    """One PostgreSQL server of the run's own when the tier runs on PostgreSQL (None on
    SQLite); each home gets a database of its own in it (new_database_url)."""
    if TEST_DATABASE != "postgresql":
        yield None
        return
    with postgres_server("vmflow-testpg-") as pg:
        yield pg


def new_database_url(pg: Postgres | None, prefix: str) -> str:
    """VMFLOW_DATABASE_URL for a new home: "" (its own SQLite file) without a server,
    else a new empty database on it, named prefix_<random>."""
    if pg is None:
        return ""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="vmflow",
                         autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return pg.url.rsplit("/", 1)[0] + f"/{name}"


def assert_on_test_database(s: Settings) -> None:
    """The tier runs on the database it was asked for (not quietly on SQLite)."""
    dialect = db.engine_for(s.db_url).dialect.name
    assert dialect == TEST_DATABASE, f"{s.db_url}: {dialect}, not {TEST_DATABASE}"


def db_session(s: Settings) -> Session:
    """A session on s's database whose rows stay readable after it closes."""
    return Session(db.engine_for(s.db_url), expire_on_commit=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# temporalio/sdk-python#300: a process that ran Temporal workers can abort while the
# interpreter finalizes; leave with pytest's own exit status once it has reported.
@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(getattr(config, "_vmflow_exitstatus", 0)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._vmflow_exitstatus = exitstatus  # type: ignore[attr-defined]
