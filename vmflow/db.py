"""Database engine, sessions and migrations (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine, select

from vmflow.models import now
from vmflow.settings import get_settings


@lru_cache
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def get_engine() -> Engine:
    return engine_for(get_settings().db_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def upgrade(url: str | None = None) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().db_url)
    command.upgrade(cfg, "head")


@contextmanager
def released(session: Session) -> Iterator[None]:
    """Roll back at once if the block raises: whatever lock_row() took is freed."""
    try:
        yield
    except BaseException:
        session.rollback()
        raise


def save_given(session: Session, row: Any, **given: Any) -> None:
    """Set each field given a value (None: kept as it is), stamp `updated_at` and
    commit: every update of names, descriptions and flags."""
    for field, value in given.items():
        if value is not None:
            setattr(row, field, value)
    row.updated_at = now()
    session.add(row)
    session.commit()


def lock_row(session: Session, table: Any, row_id: str) -> bool:
    """Hold the row `row_id` of `table` (a SQLModel class) until the session commits,
    so that read-check-write sequences on it in other sessions, in this process or
    another, wait instead of interleaving (a lost update, or two creates that both
    saw the last unit of a quota free). Run it before reading what the write depends
    on, with no await until the commit: it holds SQLite's one write lock meanwhile.

    SQLite: a no-op UPDATE takes the database's write lock (BEGIN IMMEDIATE would too,
    but the driver opens the transaction itself); it waits up to busy_timeout.
    PostgreSQL: SELECT ... FOR UPDATE on the row.

    Every way out must end the transaction at once (commit, or rollback before raising:
    see released()), not when the request's session closes: an async route of the API
    runs its queries on the event loop, and one waiting there for the lock would keep
    the loop from ever running the close that frees it. Returns whether the row exists."""
    t = table.__table__
    if session.get_bind().dialect.name == "sqlite":
        done: Any = session.execute(t.update().where(t.c.id == row_id).values(id=t.c.id))
        return bool(done.rowcount)  # a CursorResult: an UPDATE's count of rows
    return session.execute(select(t.c.id).where(t.c.id == row_id).with_for_update()).first() \
        is not None
