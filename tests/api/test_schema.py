"""The Alembic migrations build exactly the tables vmflow/models.py declares, and the
newest one can be undone and redone (the API's tables: keypairs, lock owner)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import vmflow.db
from tests.conftest import new_database_url
from tests.postgres import Postgres


def test_migrations_match_the_models(tmp_path: Path, test_postgres: Postgres | None) -> None:
    """On the tier's database: SQLite, or PostgreSQL in the api-pg tier."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(vmflow.db.__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", new_database_url(test_postgres, "schema")
                        or f"sqlite:///{tmp_path}/schema.db")
    command.upgrade(cfg, "head")
    command.check(cfg)  # raises if autogenerate would find a difference
    command.downgrade(cfg, "0001")
    command.upgrade(cfg, "head")
    command.check(cfg)
